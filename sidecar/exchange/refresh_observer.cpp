#include "sidecar/exchange/refresh_observer.hpp"

namespace cw {

std::string_view exchange_kind_name(ExchangeKind kind)
{
    switch (kind) {
    case ExchangeKind::ok:
        return "ok";
    case ExchangeKind::rejected:
        return "rejected";
    case ExchangeKind::retryable:
        return "retryable";
    case ExchangeKind::malformed:
        return "malformed";
    case ExchangeKind::token_unavailable:
        return "token-unavailable";
    }
    return "unknown";
}

}  // namespace cw

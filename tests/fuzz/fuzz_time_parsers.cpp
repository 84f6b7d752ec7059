// Fuzz target: cw::parse_rfc3339, cw::parse_http_date, cw::parse_retry_after.
//
// All three read text from the upstream (`Expiration`/`expiry`, `Date`,
// `Retry-After`). Invariants: no crash and no undefined behaviour (UBSan
// catches overflow in the chrono conversions); a parsed RFC 3339 instant
// formats and parses back to the same instant truncated to the second; an
// HTTP-date is whole seconds and round-trips through format_rfc3339; a
// Retry-After delay is between 0 and the documented cap of 5 minutes.
#include "common/time_format.hpp"
#include "fuzz_support.hpp"
#include "sidecar/exchange/exchange_client.hpp"

namespace {

const cw::SystemTime k_now = *cw::parse_rfc3339("2026-03-14T21:29:43Z");

void check_rfc3339(std::string_view text)
{
    const auto parsed = cw::parse_rfc3339(text);
    if (!parsed) {
        return;
    }
    const std::string formatted = cw::format_rfc3339(*parsed);
    FUZZ_CHECK(formatted.size() == 20);
    const auto again = cw::parse_rfc3339(formatted);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == std::chrono::floor<std::chrono::seconds>(*parsed));
    FUZZ_CHECK(*again <= *parsed);
}

void check_http_date(std::string_view text)
{
    const auto parsed = cw::parse_http_date(text);
    if (!parsed) {
        return;
    }
    FUZZ_CHECK(*parsed == std::chrono::floor<std::chrono::seconds>(*parsed));
    const auto again = cw::parse_rfc3339(cw::format_rfc3339(*parsed));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *parsed);
}

void check_retry_after(std::string_view text)
{
    const auto delay = cw::parse_retry_after(text, k_now);
    if (!delay) {
        return;
    }
    FUZZ_CHECK(delay->count() >= 0);
    FUZZ_CHECK(*delay <= std::chrono::minutes{5});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    const std::string_view text = cw_fuzz::as_text(data, size);
    check_rfc3339(text);
    check_http_date(text);
    check_retry_after(text);
    return 0;
}

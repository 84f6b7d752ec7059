#include "common/loopback.hpp"

#include <arpa/inet.h>

#include <string>

namespace cw {

bool is_loopback_host(std::string_view host)
{
    if (host == "localhost" || host == "::1") {
        return true;
    }
    in_addr address{};
    const std::string text{host};
    return inet_pton(AF_INET, text.c_str(), &address) == 1 && (ntohl(address.s_addr) >> 24) == 127;
}

}  // namespace cw

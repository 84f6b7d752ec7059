// Whether a host name or address stays on this machine.
#pragma once

#include <string_view>

namespace cw {

// localhost, ::1 and 127.0.0.0/8.
bool is_loopback_host(std::string_view host);

}  // namespace cw

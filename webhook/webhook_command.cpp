#include <iostream>

#include "sidecar/commands.hpp"

namespace cw {

int run_webhook(const Config&)
{
    std::cerr << "cwcreds webhook: not available in this build\n";
    return 1;
}

}  // namespace cw

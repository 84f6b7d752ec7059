#include "common/descriptor_limit.hpp"

#include <sys/resource.h>

#include <algorithm>

namespace cw {

std::uint64_t raise_descriptor_limit()
{
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return 1024;  // the usual default; only a cap is derived from it
    }
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            limit = raised;
        }
    }
    return limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(limit.rlim_cur);
}

ConnectionCaps fit_connection_caps(const ConnectionCaps& wanted, std::uint64_t limit, std::size_t reserved)
{
    const std::uint64_t available = limit > reserved + 3 ? limit - reserved : 3;
    if (std::uint64_t{wanted.main} + wanted.probes + wanted.imds <= available) {
        return {wanted.main, wanted.probes, wanted.imds, false};
    }
    const auto share = [&](std::size_t cap) {
        return cap == 0
                   ? 0
                   : static_cast<std::size_t>(std::min<std::uint64_t>(cap, std::max<std::uint64_t>(1, available / 8)));
    };
    ConnectionCaps caps;
    caps.lowered = true;
    caps.probes = share(wanted.probes);
    caps.imds = share(wanted.imds);
    const std::uint64_t side = caps.probes + caps.imds;
    caps.main = std::min(static_cast<std::size_t>(available > side ? available - side : 1), wanted.main);
    return caps;
}

}  // namespace cw

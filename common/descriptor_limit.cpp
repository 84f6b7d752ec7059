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

ConnectionCaps fit_connection_caps(std::size_t main, std::size_t probes, std::uint64_t limit, std::size_t reserved)
{
    const std::uint64_t available = limit > reserved + 2 ? limit - reserved : 2;
    if (main + probes <= available) {
        return {main, probes, false};
    }
    ConnectionCaps caps;
    caps.lowered = true;
    caps.probes = probes == 0 ? 0 : std::min<std::uint64_t>(probes, std::max<std::uint64_t>(1, available / 8));
    caps.main = static_cast<std::size_t>(std::max<std::uint64_t>(1, available - caps.probes));
    caps.main = std::min(caps.main, main);
    return caps;
}

}  // namespace cw

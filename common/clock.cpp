#include "common/clock.hpp"

namespace cw {

SystemTime RealClock::now() const
{
    return std::chrono::system_clock::now();
}

Clock& real_clock()
{
    static RealClock clock;
    return clock;
}

}  // namespace cw

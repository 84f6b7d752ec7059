#include "common/clock.hpp"

namespace cw {

SystemTime RealClock::now() const
{
    return std::chrono::system_clock::now();
}

SteadyTime RealClock::steady_now() const
{
    return std::chrono::steady_clock::now();
}

Clock& real_clock()
{
    static RealClock clock;
    return clock;
}

SystemTime on_wall_clock(SteadyTime instant, SystemTime wall_now, SteadyTime steady_now)
{
    return wall_now + std::chrono::duration_cast<SystemTime::duration>(instant - steady_now);
}

Millis wall_offset(SystemTime wall_now, SteadyTime steady_now)
{
    return std::chrono::duration_cast<Millis>(wall_now.time_since_epoch()) -
           std::chrono::duration_cast<Millis>(steady_now.time_since_epoch());
}

}  // namespace cw

#include "common/clock.hpp"

#include <ctime>

namespace cw {

BootClock::time_point BootClock::now() noexcept
{
    timespec reading{};
    clock_gettime(CLOCK_BOOTTIME, &reading);
    return time_point{std::chrono::seconds{reading.tv_sec} + std::chrono::nanoseconds{reading.tv_nsec}};
}

SystemTime RealClock::now() const
{
    return std::chrono::system_clock::now();
}

SteadyTime RealClock::steady_now() const
{
    return BootClock::now();
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

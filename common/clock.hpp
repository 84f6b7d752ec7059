// Time, injected.
//
// Two clocks, because they answer different questions. The monotonic clock
// (BootClock) measures how long something lasts: a key's remaining life,
// backoff, timeouts. It never steps, so neither a node clock minutes off nor
// an NTP correction can stretch or cut a key's life. It is CLOCK_BOOTTIME,
// not steady_clock's CLOCK_MONOTONIC, because a key keeps ageing while the
// machine is suspended (a laptop running kind): after resume, a key must not
// look as young as when the machine slept. The wall clock
// (system_clock) names instants for people and SDKs: an `Expiration`, a log
// time, a JWT's `exp`. Long-lived components take a `Clock&` whose default
// is the real one, so tests substitute a clock they move by hand, and can
// step the wall clock without moving the monotonic one.
#pragma once

#include <chrono>

namespace cw {

// CLOCK_BOOTTIME as a std::chrono clock: monotonic, and counting suspend.
struct BootClock {
    using duration = std::chrono::nanoseconds;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<BootClock>;
    static constexpr bool is_steady = true;
    static time_point now() noexcept;
};

using SystemTime = std::chrono::system_clock::time_point;
using SteadyTime = BootClock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
public:
    virtual ~Clock() = default;
    [[nodiscard]] virtual SystemTime now() const = 0;
    [[nodiscard]] virtual SteadyTime steady_now() const = 0;
};

class RealClock final : public Clock {
public:
    [[nodiscard]] SystemTime now() const override;
    [[nodiscard]] SteadyTime steady_now() const override;
};

// The process-wide real clock, for production wiring.
Clock& real_clock();

// A monotonic instant expressed on the wall clock, given one reading of both
// clocks taken together.
[[nodiscard]] SystemTime on_wall_clock(SteadyTime instant, SystemTime wall_now, SteadyTime steady_now);

// How far the wall clock stands from the monotonic one; a change of this
// offset means the wall clock stepped.
[[nodiscard]] Millis wall_offset(SystemTime wall_now, SteadyTime steady_now);

}  // namespace cw

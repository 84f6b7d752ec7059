// Time, injected.
//
// Two clocks, because they answer different questions. The monotonic clock
// (steady_clock) measures how long something lasts: a key's remaining life,
// backoff, timeouts. It never steps, so neither a node clock minutes off nor
// an NTP correction can stretch or cut a key's life. The wall clock
// (system_clock) names instants for people and SDKs: an `Expiration`, a log
// time, a JWT's `exp`. Long-lived components take a `Clock&` whose default
// is the real one, so tests substitute a clock they move by hand, and can
// step the wall clock without moving the monotonic one.
#pragma once

#include <chrono>

namespace cw {

using SystemTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;
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

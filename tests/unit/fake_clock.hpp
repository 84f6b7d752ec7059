// A clock that moves only when a test says so. advance() and advance_to()
// move both clocks together, as time passing does; step_wall() moves only the
// wall clock, as an NTP step or a badly set node clock does.
#pragma once

#include <atomic>

#include "common/clock.hpp"
#include "common/time_format.hpp"

namespace cw::test {

class FakeClock final : public Clock {
public:
    explicit FakeClock(SystemTime start = *parse_rfc3339("2026-11-23T12:00:00Z")) : m_now(start) {}

    [[nodiscard]] SystemTime now() const override { return m_now.load(); }
    [[nodiscard]] SteadyTime steady_now() const override { return m_steady.load(); }

    void advance(Millis step)
    {
        m_now = m_now.load() + step;
        m_steady = m_steady.load() + step;
    }

    // Moves both clocks until the monotonic one reads `instant`.
    void advance_to(SteadyTime instant) { advance(std::chrono::duration_cast<Millis>(instant - m_steady.load())); }

    void step_wall(Millis step) { m_now = m_now.load() + step; }

private:
    std::atomic<SystemTime> m_now;
    // An arbitrary origin, as the real monotonic clock's is.
    std::atomic<SteadyTime> m_steady{SteadyTime{std::chrono::hours{1000}}};
};

}  // namespace cw::test

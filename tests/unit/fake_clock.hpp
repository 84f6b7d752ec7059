// A clock that moves only when a test says so.
#pragma once

#include <atomic>

#include "common/clock.hpp"
#include "common/time_format.hpp"

namespace cw::test {

class FakeClock final : public Clock {
public:
    explicit FakeClock(SystemTime start = *parse_rfc3339("2026-11-23T12:00:00Z")) : m_now(start) {}

    [[nodiscard]] SystemTime now() const override { return m_now.load(); }

    void advance(Millis step) { m_now = m_now.load() + step; }

    void set(SystemTime instant) { m_now = instant; }

private:
    std::atomic<SystemTime> m_now;
};

}  // namespace cw::test

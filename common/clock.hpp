// Time, injected.
//
// Expiries are wall-clock instants (system_clock) because the upstream states
// them that way; waits and timeouts use steady_clock so a wall-clock jump does
// not stretch them. Long-lived components take a `Clock&` whose default is
// the real one, so tests can substitute a clock they move by hand.
#pragma once

#include <chrono>

namespace cw {

using SystemTime = std::chrono::system_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
public:
    virtual ~Clock() = default;
    [[nodiscard]] virtual SystemTime now() const = 0;
};

class RealClock final : public Clock {
public:
    [[nodiscard]] SystemTime now() const override;
};

// The process-wide real clock, for production wiring.
Clock& real_clock();

}  // namespace cw

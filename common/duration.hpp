// Human durations as users type them: `300ms`, `45s`, `15m`, `2h`, `1h30m`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"

namespace cw {

// Parses a sequence of <digits><unit> with units ms, s, m, h. Returns nullopt
// for anything else (empty, negative, fractional, unknown unit, overflow).
std::optional<Millis> parse_duration(std::string_view text);

// The shortest exact spelling that parse_duration reads back: `1h30m`, `45s`, `300ms`.
std::string format_duration(Millis duration);

}  // namespace cw

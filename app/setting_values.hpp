// The values a setting may take, each parsed from text by one function: the
// same parser reads a default, an environment variable and a flag. A value
// that does not parse throws BadValue with what was expected; the settings
// table adds which flag or variable carried it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.hpp"

namespace cw {

struct BadValue {
    std::string message;
};

// 300ms, 45s, 15m, 2h...
Millis duration_value(std::string_view text);
// The same, longer than zero.
Millis positive_duration(std::string_view text);
// A duration as the shortest text that says it exactly, for the injected
// sidecar's flags and annotations: 1h, 90m, 45s, 1500ms.
std::string duration_text(Millis duration);
// A number from low to high (NaN refused).
double fraction_value(std::string_view text, double low, double high);
std::size_t count_value(std::string_view text, std::size_t low, std::size_t high);
// 1/true/yes/on or 0/false/no/off/empty.
bool switch_value(std::string_view text);
std::string non_empty(std::string_view text);

struct HostPort {
    std::string host;
    std::uint16_t port;
};

// HOST:PORT with an IP address (IPv6 in brackets) or localhost, which becomes 127.0.0.1.
HostPort host_port(std::string_view text);

}  // namespace cw

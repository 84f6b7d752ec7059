#include "common/duration.hpp"

#include <charconv>
#include <cstdint>
#include <limits>

namespace cw {

namespace {

std::optional<std::int64_t> unit_millis(std::string_view unit)
{
    if (unit == "ms") {
        return 1;
    }
    if (unit == "s") {
        return 1000;
    }
    if (unit == "m") {
        return 60'000;
    }
    if (unit == "h") {
        return 3'600'000;
    }
    return std::nullopt;
}

bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text)
{
    if (text.empty()) {
        return std::nullopt;
    }
    // Bounded well below int64 overflow: nobody configures a century.
    constexpr std::int64_t k_max_millis = std::int64_t{100} * 365 * 24 * 3'600'000;
    std::int64_t total = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t digits_end = pos;
        while (digits_end < text.size() && is_digit(text[digits_end])) {
            ++digits_end;
        }
        if (digits_end == pos || digits_end - pos > 12) {
            return std::nullopt;
        }
        std::int64_t amount = 0;
        std::from_chars(text.data() + pos, text.data() + digits_end, amount);
        std::size_t unit_end = digits_end;
        while (unit_end < text.size() && !is_digit(text[unit_end])) {
            ++unit_end;
        }
        const auto factor = unit_millis(text.substr(digits_end, unit_end - digits_end));
        if (!factor) {
            return std::nullopt;
        }
        total += amount * *factor;
        if (total > k_max_millis) {
            return std::nullopt;
        }
        pos = unit_end;
    }
    return Millis{total};
}

std::string format_duration(Millis duration)
{
    std::int64_t ms = duration.count();
    if (ms == 0) {
        return "0s";
    }
    std::string out;
    if (ms < 0) {
        out = "-";
        ms = -ms;
    }
    const std::int64_t hours = ms / 3'600'000;
    const std::int64_t minutes = ms / 60'000 % 60;
    const std::int64_t seconds = ms / 1000 % 60;
    const std::int64_t millis = ms % 1000;
    if (hours != 0) {
        out += std::to_string(hours) + "h";
    }
    if (minutes != 0) {
        out += std::to_string(minutes) + "m";
    }
    if (seconds != 0) {
        out += std::to_string(seconds) + "s";
    }
    if (millis != 0) {
        out += std::to_string(millis) + "ms";
    }
    return out;
}

}  // namespace cw

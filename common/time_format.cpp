#include "common/time_format.hpp"

#include <array>
#include <cstdio>

namespace cw {

namespace {

// Reads exactly `width` digits at `pos`.
std::optional<int> digits(std::string_view text, std::size_t pos, std::size_t width)
{
    if (pos + width > text.size()) {
        return std::nullopt;
    }
    int value = 0;
    for (std::size_t i = pos; i < pos + width; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return std::nullopt;
        }
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

// system_clock counts nanoseconds in 64 bits: it spans 1678 to 2262. Times
// outside 1970..2200 are refused before any arithmetic could overflow; no
// credential or token legitimately expires outside them.
constexpr int k_first_year = 1970;
constexpr int k_last_year = 2200;

std::optional<SystemTime> from_civil(int year, int month, int day, int hour, int minute, int second)
{
    using namespace std::chrono;
    if (year < k_first_year || year > k_last_year) {
        return std::nullopt;
    }
    const year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                              std::chrono::day{static_cast<unsigned>(day)}};
    if (!date.ok() || hour > 23 || minute > 59 || second > 60) {
        return std::nullopt;
    }
    return sys_days{date} + hours{hour} + minutes{minute} + seconds{second};
}

}  // namespace

std::optional<SystemTime> parse_rfc3339(std::string_view text)
{
    using namespace std::chrono;
    // YYYY-MM-DDTHH:MM:SS is 19 characters, then fraction and zone.
    const auto year = digits(text, 0, 4);
    const auto month = digits(text, 5, 2);
    const auto day = digits(text, 8, 2);
    const auto hour = digits(text, 11, 2);
    const auto minute = digits(text, 14, 2);
    const auto second = digits(text, 17, 2);
    if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' || text[7] != '-' ||
        (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' || text[16] != ':') {
        return std::nullopt;
    }
    auto instant = from_civil(*year, *month, *day, *hour, *minute, *second);
    if (!instant) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        const std::size_t start = pos;
        int millis = 0;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            if (pos - start < 3) {
                millis = millis * 10 + (text[pos] - '0');
            }
            ++pos;
        }
        if (pos == start) {
            return std::nullopt;
        }
        for (std::size_t n = pos - start; n < 3; ++n) {
            millis *= 10;
        }
        *instant += milliseconds{millis};
    }
    if (pos == text.size()) {
        return std::nullopt;  // a zone is mandatory in RFC 3339
    }
    if ((text[pos] == 'Z' || text[pos] == 'z') && pos + 1 == text.size()) {
        return instant;
    }
    if ((text[pos] == '+' || text[pos] == '-') && pos + 6 == text.size() && text[pos + 3] == ':') {
        const auto off_h = digits(text, pos + 1, 2);
        const auto off_m = digits(text, pos + 4, 2);
        if (!off_h || !off_m || *off_h > 23 || *off_m > 59) {
            return std::nullopt;
        }
        const auto offset = hours{*off_h} + minutes{*off_m};
        return text[pos] == '+' ? *instant - offset : *instant + offset;
    }
    return std::nullopt;
}

std::string format_rfc3339(SystemTime instant)
{
    using namespace std::chrono;
    const auto secs = floor<seconds>(instant);
    const auto day = floor<days>(secs);
    const year_month_day date{day};
    const hh_mm_ss time{secs - day};
    std::array<char, 32> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%04d-%02u-%02uT%02ld:%02ld:%02ldZ", static_cast<int>(date.year()),
                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                  static_cast<long>(time.hours().count()), static_cast<long>(time.minutes().count()),
                  static_cast<long>(time.seconds().count()));
    return buffer.data();
}

std::optional<SystemTime> parse_http_date(std::string_view text)
{
    // "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions after the weekday.
    static constexpr std::array<std::string_view, 12> k_months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (text.size() != 29 || text.substr(3, 2) != ", " || text.substr(25) != " GMT") {
        return std::nullopt;
    }
    int month = 0;
    for (std::size_t i = 0; i < k_months.size(); ++i) {
        if (text.substr(8, 3) == k_months[i]) {
            month = static_cast<int>(i) + 1;
        }
    }
    const auto day = digits(text, 5, 2);
    const auto year = digits(text, 12, 4);
    const auto hour = digits(text, 17, 2);
    const auto minute = digits(text, 20, 2);
    const auto second = digits(text, 23, 2);
    if (month == 0 || !day || !year || !hour || !minute || !second) {
        return std::nullopt;
    }
    return from_civil(*year, month, *day, *hour, *minute, *second);
}

}  // namespace cw

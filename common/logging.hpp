// One line per event, with fields, in text or JSON.
//
// text: `2026-11-23T18:00:00.123Z info exchange ok expires_in=900s attempt=1`
// json: `{"ts":"2026-11-23T18:00:00.123Z","level":"info","msg":"exchange ok","expires_in_seconds":900,"attempt":1}`
// Values are whatever the caller passes: redact before logging (common/redact.hpp).
#pragma once

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <spdlog/spdlog.h>

namespace cw {

enum class LogFormat { text, json };

struct LogField {
    template <typename Integer>
        requires std::is_integral_v<Integer> && (!std::is_same_v<Integer, bool>)
    LogField(std::string_view name, Integer number) : key(name), value(std::to_string(number)), is_number(true)
    {
    }
    // A duration: `expires_in=898s` (or `duration=1h30m`) in text, and in JSON
    // a number under the key with `_seconds` appended, `"expires_in_seconds":898`,
    // so log queries can compare it. Milliseconds keep their fraction (0.25).
    LogField(std::string_view name, std::chrono::milliseconds duration);
    LogField(std::string_view name, std::chrono::seconds duration);
    // As above; nullopt is `none` in text and null in JSON.
    LogField(std::string_view name, std::optional<std::chrono::seconds> duration);
    LogField(std::string_view name, std::string text) : key(name), value(std::move(text)) {}
    LogField(std::string_view name, std::string_view text) : key(name), value(text) {}
    LogField(std::string_view name, const char* text) : key(name), value(text) {}

    std::string key;
    std::string value;
    bool is_number = false;
    std::string json_key;     // empty: key
    std::string json_number;  // set: JSON writes this number (or null) instead of value
};

// Sets the process-wide logger: stderr, UTC timestamps, the given format and level.
void setup_logging(LogFormat format, spdlog::level::level_enum level);

// Formats `event` and its fields in the configured format.
std::string format_event(LogFormat format, std::string_view event, std::initializer_list<LogField> fields);

void log_event(spdlog::level::level_enum level, std::string_view event, std::initializer_list<LogField> fields = {});

}  // namespace cw

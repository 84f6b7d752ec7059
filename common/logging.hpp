// One line per event, with fields, in text or JSON.
//
// text: `2026-11-23T18:00:00.123Z info exchange ok expires_in=900s attempt=1`
// json: `{"ts":"2026-11-23T18:00:00.123Z","level":"info","msg":"exchange ok","expires_in":"900s","attempt":1}`
// Values are whatever the caller passes: redact before logging (common/redact.hpp).
#pragma once

#include <initializer_list>
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
    LogField(std::string_view name, std::string text) : key(name), value(std::move(text)) {}
    LogField(std::string_view name, std::string_view text) : key(name), value(text) {}
    LogField(std::string_view name, const char* text) : key(name), value(text) {}

    std::string key;
    std::string value;
    bool is_number = false;
};

// Sets the process-wide logger: stderr, UTC timestamps, the given format and level.
void setup_logging(LogFormat format, spdlog::level::level_enum level);

// Formats `event` and its fields in the configured format.
std::string format_event(LogFormat format, std::string_view event, std::initializer_list<LogField> fields);

void log_event(spdlog::level::level_enum level, std::string_view event, std::initializer_list<LogField> fields = {});

}  // namespace cw

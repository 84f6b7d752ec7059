#include "common/logging.hpp"

#include <algorithm>
#include <atomic>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>

#include "common/duration.hpp"

namespace cw {

namespace {

std::atomic<LogFormat> g_format{LogFormat::text};

// Code points a terminal or log viewer may act on instead of showing: C1
// controls (U+009B is CSI), line and paragraph separators, and the bidi
// controls that make text read in another order than it is.
bool is_invisible_control(char32_t code)
{
    return (code >= 0x80 && code <= 0x9F) || code == 0x061C || code == 0x200E || code == 0x200F ||
           (code >= 0x2028 && code <= 0x202E) || (code >= 0x2066 && code <= 0x2069);
}

// Values come from anywhere (a pod name in an AdmissionReview, a path, an
// upstream's excerpt). As a JSON string every C0 control is escaped already
// (\n, \u001b); DEL and the invisible controls above are escaped here, so
// a value can neither end the line nor reach a terminal as an escape
// sequence, while readable text (the … of a masked key) stays as it is.
// Invalid UTF-8 (a path, a stray byte) is replaced rather than thrown on.
std::string json_quoted(std::string_view value)
{
    const std::string dumped = nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string out;
    out.reserve(dumped.size());
    for (std::size_t i = 0; i < dumped.size();) {
        const auto lead = static_cast<unsigned char>(dumped[i]);
        const std::size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        char32_t code = length == 1 ? lead : lead & (0x7FU >> length);
        for (std::size_t k = 1; k < length && i + k < dumped.size(); ++k) {
            code = (code << 6U) | (static_cast<unsigned char>(dumped[i + k]) & 0x3FU);
        }
        if (code == 0x7F || is_invisible_control(code)) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(code));
        } else {
            out.append(dumped, i, length);
        }
        i += length;
    }
    return out;
}

// A text value goes bare only when it is plain printable ASCII with nothing
// that would split it into two fields or end it.
bool needs_quotes(std::string_view value)
{
    return value.empty() || std::any_of(value.begin(), value.end(), [](char c) {
               const auto byte = static_cast<unsigned char>(c);
               return byte <= 0x20 || byte >= 0x7F || c == '"' || c == '=';
           });
}

}  // namespace

LogField::LogField(std::string_view name, std::chrono::milliseconds duration)
    : key(name), value(format_duration(duration)), json_key(std::string{name} + "_seconds")
{
    const auto ms = duration.count();
    json_number = ms % 1000 == 0 ? std::to_string(ms / 1000) : fmt::format("{}", static_cast<double>(ms) / 1000.0);
}

LogField::LogField(std::string_view name, std::chrono::seconds duration)
    : key(name),
      value(std::to_string(duration.count()) + "s"),
      json_key(std::string{name} + "_seconds"),
      json_number(std::to_string(duration.count()))
{
}

LogField::LogField(std::string_view name, std::optional<std::chrono::seconds> duration)
    : LogField(name, duration.value_or(std::chrono::seconds{0}))
{
    if (!duration) {
        value = "none";
        json_number = "null";
    }
}

void setup_logging(LogFormat format, spdlog::level::level_enum level)
{
    g_format = format;
    auto logger = std::make_shared<spdlog::logger>("cwcreds", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    if (format == LogFormat::json) {
        logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})", spdlog::pattern_time_type::utc);
    } else {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
    }
    logger->set_level(level);
    // A sidecar's logs are read live by `kubectl logs`: never hold lines back.
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
}

std::string format_event(LogFormat format, std::string_view event, std::initializer_list<LogField> fields)
{
    if (format == LogFormat::json) {
        // The surrounding braces and ts/level come from the logger's pattern.
        std::string line = R"("msg":)" + json_quoted(event);
        for (const auto& field : fields) {
            line += ',' + json_quoted(field.json_key.empty() ? field.key : field.json_key) + ':';
            line += !field.json_number.empty() ? field.json_number
                    : field.is_number          ? field.value
                                               : json_quoted(field.value);
        }
        return line;
    }
    std::string line{event};
    for (const auto& field : fields) {
        line += ' ' + field.key + '=';
        line += needs_quotes(field.value) ? json_quoted(field.value) : field.value;
    }
    return line;
}

void log_event(spdlog::level::level_enum level, std::string_view event, std::initializer_list<LogField> fields)
{
    if (!spdlog::should_log(level)) {
        return;
    }
    spdlog::log(level, "{}", format_event(g_format, event, fields));
}

}  // namespace cw

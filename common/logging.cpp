#include "common/logging.hpp"

#include <atomic>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>

namespace cw {

namespace {

std::atomic<LogFormat> g_format{LogFormat::text};

// Invalid UTF-8 (a path, a stray byte) is replaced rather than thrown on.
std::string json_quoted(std::string_view value)
{
    return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool needs_quotes(std::string_view value)
{
    return value.empty() || value.find_first_of(" \t\"=") != std::string_view::npos;
}

}  // namespace

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
            line += ',' + json_quoted(field.key) + ':';
            line += field.is_number ? field.value : json_quoted(field.value);
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

// Log lines written while a LogCapture lives, for tests that assert what a
// component logged (and how often).
#pragma once

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

class LogCapture {
public:
    LogCapture() : m_previous(spdlog::default_logger())
    {
        auto logger =
            std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(m_out));
        logger->set_pattern("%v");
        spdlog::set_default_logger(logger);
    }
    ~LogCapture() { spdlog::set_default_logger(m_previous); }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    // A server logs on its own thread: flushing takes the sink's lock, so
    // what it wrote is seen here.
    [[nodiscard]] std::string text() const
    {
        spdlog::default_logger()->flush();
        return m_out.str();
    }
    [[nodiscard]] long lines() const
    {
        const std::string all = text();
        return std::count(all.begin(), all.end(), '\n');
    }

private:
    std::ostringstream m_out;
    std::shared_ptr<spdlog::logger> m_previous;
};

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/logging.hpp"

TEST_SUITE("common::logging")
{
    TEST_CASE("text events are a message followed by key=value fields")
    {
        const std::string line = cw::format_event(cw::LogFormat::text, "exchange ok",
                                                  {{"expires_in", "900s"}, {"attempt", 1}, {"detail", "HTTP 503: busy"}});
        CHECK(line == R"(exchange ok expires_in=900s attempt=1 detail="HTTP 503: busy")");
    }

    TEST_CASE("json events are the fields of one object, numbers unquoted")
    {
        const std::string fields = cw::format_event(cw::LogFormat::json, "exchange ok",
                                                    {{"expires_in", "900s"}, {"attempt", 1}, {"quote", "a\"b"}});
        const auto line = nlohmann::json::parse("{" + fields + "}");
        CHECK(line["msg"] == "exchange ok");
        CHECK(line["attempt"] == 1);
        CHECK(line["quote"] == "a\"b");
    }

    TEST_CASE("invalid UTF-8 in a value does not break the JSON line")
    {
        const std::string fields = cw::format_event(cw::LogFormat::json, "token unavailable", {{"file", "/tmp/\xFF"}});
        CHECK(nlohmann::json::parse("{" + fields + "}", nullptr, false).is_object());
    }
}

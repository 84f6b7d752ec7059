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

    TEST_CASE("durations read as 898s in text and are numbers of seconds in json")
    {
        using namespace std::chrono_literals;
        const std::optional<std::chrono::seconds> none;
        CHECK(cw::format_event(
                  cw::LogFormat::text, "exchange ok",
                  {{"expires_in", 898s}, {"previous_left", none}, {"duration", 5400000ms}, {"retry_in", 1250ms}}) ==
              "exchange ok expires_in=898s previous_left=none duration=1h30m retry_in=1s250ms");
        const auto line = nlohmann::json::parse(
            "{" +
            cw::format_event(
                cw::LogFormat::json, "exchange ok",
                {{"expires_in", 898s}, {"previous_left", none}, {"duration", 5400000ms}, {"retry_in", 1250ms}}) +
            "}");
        CHECK(line["expires_in_seconds"] == 898);
        CHECK(line["expires_in_seconds"].is_number_integer());
        CHECK(line["previous_left_seconds"].is_null());
        CHECK(line["duration_seconds"] == 5400);
        CHECK(line["retry_in_seconds"] == 1.25);
        CHECK_FALSE(line.contains("expires_in"));
    }

    TEST_CASE("a value cannot forge a line or reach the terminal: controls are escaped, readable text kept")
    {
        // A pod named by whoever sends the AdmissionReview.
        const std::string forged =
            "web\n2026-12-05T00:00:00.000Z info injected pod=admin\x1b[2J\x7f\r\xc2\x9b"
            "31m\xe2\x80\xae";
        for (const auto format : {cw::LogFormat::text, cw::LogFormat::json}) {
            const std::string line = cw::format_event(format, "pod refused", {{"pod", forged}});
            CHECK(line.find('\n') == std::string::npos);
            CHECK(line.find('\r') == std::string::npos);
            CHECK(line.find('\x1b') == std::string::npos);
            CHECK(line.find('\x7f') == std::string::npos);
            CHECK(line.find("\xc2\x9b") == std::string::npos);      // CSI
            CHECK(line.find("\xe2\x80\xae") == std::string::npos);  // right-to-left override
            CHECK(line.find(R"(\u001b[2J\u007f\r\u009b31m\u202e")") != std::string::npos);
        }
        // Decoded, the value is what was given.
        const std::string text = cw::format_event(cw::LogFormat::text, "pod refused", {{"pod", forged}});
        CHECK(text.find(R"(pod="web\n2026)") != std::string::npos);
        CHECK(nlohmann::json::parse(text.substr(text.find("pod=") + 4)) == forged);
        const std::string json = cw::format_event(cw::LogFormat::json, "pod refused", {{"pod", forged}});
        CHECK(nlohmann::json::parse("{" + json + "}")["pod"] == forged);

        // Readable text stays readable: a masked key keeps its ellipsis.
        CHECK(cw::format_event(cw::LogFormat::text, "e",
                               {{"key",
                                 "CWAK\xe2\x80\xa6"
                                 "4567"}}) ==
              "e key=\"CWAK\xe2\x80\xa6"
              "4567\"");
        // Bare only when plain: no space, tab, quote, '=', nothing unprintable or non-ASCII.
        CHECK(cw::format_event(cw::LogFormat::text, "e", {{"k", "plain-value_1.2:3/4"}}) == "e k=plain-value_1.2:3/4");
        for (const std::string value : {"a b", "a\tb", "a=b", "a\"b", "a\x01", "caf\xc3\xa9", ""}) {
            CAPTURE(value);
            const std::string line = cw::format_event(cw::LogFormat::text, "e", {{"k", value}});
            CHECK(line.substr(0, 5) == "e k=\"");
        }
    }

    TEST_CASE("invalid UTF-8 in a value does not break the JSON line")
    {
        const std::string fields = cw::format_event(cw::LogFormat::json, "token unavailable", {{"file", "/tmp/\xFF"}});
        CHECK(nlohmann::json::parse("{" + fields + "}", nullptr, false).is_object());
    }
}

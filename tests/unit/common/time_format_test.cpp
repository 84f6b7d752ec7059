#include <doctest/doctest.h>

#include "common/time_format.hpp"

using namespace std::chrono_literals;

TEST_SUITE("common::time_format")
{
    TEST_CASE("an RFC 3339 UTC time round-trips in the strict shape SDKs expect")
    {
        const auto instant = cw::parse_rfc3339("2026-03-14T21:44:43Z");
        REQUIRE(instant);
        CHECK(cw::format_rfc3339(*instant) == "2026-03-14T21:44:43Z");
    }

    TEST_CASE("fractions and offsets denote the same instant")
    {
        const auto plain = *cw::parse_rfc3339("2026-03-14T21:44:43Z");
        CHECK(cw::parse_rfc3339("2026-03-14T21:44:43.250Z") == plain + 250ms);
        CHECK(cw::parse_rfc3339("2026-03-14T21:44:43.123456789Z") == plain + 123ms);
        CHECK(cw::parse_rfc3339("2026-03-14T22:44:43+01:00") == plain);
        CHECK(cw::parse_rfc3339("2026-03-14T16:14:43-05:30") == plain);
        CHECK(cw::parse_rfc3339("2026-03-14t21:44:43z") == plain);
    }

    TEST_CASE("formatting drops sub-seconds, never rounding an expiry later")
    {
        const auto instant = *cw::parse_rfc3339("2026-03-14T21:44:43.999Z");
        CHECK(cw::format_rfc3339(instant) == "2026-03-14T21:44:43Z");
    }

    TEST_CASE("rejects times that are not RFC 3339")
    {
        for (const char* bad : {"", "2026-03-14", "2026-03-14T21:44:43", "2026-13-14T21:44:43Z", "2026-02-30T00:00:00Z",
                                "2026-03-14T25:00:00Z", "2026-03-14T21:44:43.Z", "2026-03-14T21:44:43+0100",
                                "1773524683", "2026-03-14T21:44:43Zjunk"}) {
            CAPTURE(bad);
            CHECK_FALSE(cw::parse_rfc3339(bad));
        }
    }

    TEST_CASE("reads the HTTP-date of Date and Retry-After headers")
    {
        CHECK(cw::parse_http_date("Sat, 14 Mar 2026 21:44:43 GMT") == cw::parse_rfc3339("2026-03-14T21:44:43Z"));
        CHECK_FALSE(cw::parse_http_date("Sat, 14 Foo 2026 21:44:43 GMT"));
        CHECK_FALSE(cw::parse_http_date("120"));
    }
}

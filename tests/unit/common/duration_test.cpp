#include <doctest/doctest.h>

#include "common/duration.hpp"

using namespace std::chrono_literals;

TEST_SUITE("common::duration")
{
    TEST_CASE("reads the units users type")
    {
        CHECK(cw::parse_duration("300ms") == cw::Millis{300});
        CHECK(cw::parse_duration("45s") == cw::Millis{45s});
        CHECK(cw::parse_duration("15m") == cw::Millis{15min});
        CHECK(cw::parse_duration("2h") == cw::Millis{2h});
        CHECK(cw::parse_duration("1h30m") == cw::Millis{90min});
        CHECK(cw::parse_duration("0s") == cw::Millis{0});
    }

    TEST_CASE("rejects what is not a duration")
    {
        for (const char* bad : {"", "5", "5x", "-5s", "1.5h", "s", "5 s", "ms5", "99999999999999h"}) {
            CAPTURE(bad);
            CHECK_FALSE(cw::parse_duration(bad));
        }
    }

    TEST_CASE("formats so that parsing gives the same value back")
    {
        for (const cw::Millis value : {cw::Millis{300}, cw::Millis{45s}, cw::Millis{90min}, cw::Millis{12h}, cw::Millis{3'723'004}}) {
            CAPTURE(value.count());
            CHECK(cw::parse_duration(cw::format_duration(value)) == value);
        }
        CHECK(cw::format_duration(cw::Millis{90min}) == "1h30m");
        CHECK(cw::format_duration(cw::Millis{0}) == "0s");
    }
}

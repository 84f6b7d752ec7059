// What the fuzz targets found, as plain unit tests (doctest).
//
// Each case is the minimised input of a finding, also kept in the target's
// corpus (corpus/<target>/regression-*), and states the behaviour the fix
// must give. Part of the unit tests, so the ASan+UBSan run catches undefined
// behaviour even when a result happens to look right.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/jwt_claims.hpp"
#include "common/time_format.hpp"
#include "app/config.hpp"
#include "sidecar/exchange/exchange_client.hpp"
#include "sidecar/exchange/upstream_answer.hpp"

namespace {

const cw::SystemTime k_now = *cw::parse_rfc3339("2026-03-14T21:29:43Z");

}  // namespace

TEST_CASE("an RFC 3339 time outside the clock's range is refused, not wrapped around")
{
    // std::chrono::system_clock counts nanoseconds in 64 bits: years before
    // 1678 or after 2261 overflow in from_civil (common/time_format.cpp),
    // which is undefined behaviour and in practice wraps: 1600 reads as 2184.
    for (const char* text : {"1600-01-01T00:00:00Z", "1000-01-01T00:00:00Z", "0000-01-01T00:00:00Z",
                             "2300-01-01T00:00:00Z", "2426-03-15T21:44:43.123Z", "9999-12-31T23:59:59Z"}) {
        CAPTURE(text);
        const auto parsed = cw::parse_rfc3339(text);
        if (parsed) {
            // Whatever it returns must be the instant it was given.
            CHECK(cw::format_rfc3339(*parsed).substr(0, 19) == std::string{text}.substr(0, 19));
        }
    }
}

TEST_CASE("an HTTP-date outside the clock's range is refused, not wrapped around")
{
    for (const char* text : {"Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 1600 00:00:00 GMT"}) {
        CAPTURE(text);
        const auto parsed = cw::parse_http_date(text);
        if (parsed) {
            CHECK(cw::parse_rfc3339(cw::format_rfc3339(*parsed)) == parsed);
        }
        // Retry-After reads the same dates: a delay in 0..5 min, or none.
        const auto delay = cw::parse_retry_after(text, k_now);
        if (delay) {
            CHECK(delay->count() >= 0);
            CHECK(*delay <= std::chrono::minutes{5});
        }
    }
}

TEST_CASE("an upstream Expiration in the year 1000 is not served as valid until 2169")
{
    // Seen end to end: the sidecar served these keys with
    // "Expiration":"2169-02-08T23:09:07Z" and scheduled no renewal for decades.
    for (const char* expiration : {"1000-01-01T00:00:00Z", "1600-01-01T00:00:00Z"}) {
        CAPTURE(expiration);
        const std::string body = std::string{R"({"AccessKeyId":"CWAK","SecretAccessKey":"s","Token":"","Expiration":")"} +
                                 expiration + "\"}";
        const auto result = cw::parse_upstream_answer(cw::ExchangeMode::container_credentials, body, k_now);
        CHECK(std::holds_alternative<cw::AnswerError>(result));
    }
}

TEST_CASE("a JWT exp beyond 2262 does not overflow")
{
    // common/jwt_claims.cpp numeric_date accepts up to 1e11 seconds, but
    // SystemTime holds at most ~9.2e9 seconds (year 2262).
    // Payload {"exp":10000000000,"iat":99999999999}
    const auto result = cw::decode_jwt_claims("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjEwMDAwMDAwMDAwLCJpYXQiOjk5OTk5OTk5OTk5fQ.c2ln");
    REQUIRE(std::holds_alternative<cw::JwtClaims>(result));
    const auto& claims = std::get<cw::JwtClaims>(result);
    for (const auto& instant : {claims.expires_at, claims.issued_at}) {
        if (instant) {
            CHECK(*instant > k_now);  // far future stays future (or is dropped), never wraps into the past
        }
    }
}

TEST_CASE("--refresh-fraction and --refresh-jitter refuse NaN")
{
    // std::from_chars reads "nan"; NaN fails neither `value < low` nor
    // `value > high` (app/config.cpp fraction_value), so it was accepted,
    // and refresh_due() then scheduled every renewal immediately: ~23
    // exchanges a second against CoreWeave, measured with the emulator.
    const std::vector<std::vector<std::string>> cases{
        {"--org-id", "o", "--refresh-fraction", "nan"},
        {"--org-id", "o", "--refresh-fraction=NaN"},
        {"--org-id", "o", "--refresh-jitter", "nan"},
        {"--org-id", "o", "--refresh-jitter", "-nan"},
    };
    for (const auto& args : cases) {
        CAPTURE(args.back());
        CHECK_THROWS_AS(cw::parse_config(cw::Command::serve, args, {}), cw::ConfigError);
    }
    const std::vector<std::string> args{"--org-id", "o"};
    CHECK_THROWS_AS(cw::parse_config(cw::Command::serve, args, {{"CWCREDS_REFRESH_FRACTION", "nan"}}), cw::ConfigError);
}

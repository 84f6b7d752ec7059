#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/time_format.hpp"
#include "sidecar/exchange/credentials.hpp"

namespace {

cw::Credentials sample(std::string session_token = "")
{
    const auto obtained = *cw::parse_rfc3339("2026-03-14T21:29:43Z");
    return {"CWAKIAEXAMPLE1234567", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", std::move(session_token),
            *cw::parse_rfc3339("2026-03-14T21:44:43.700Z"), obtained};
}

const cw::SystemTime k_stated = *cw::parse_rfc3339("2026-03-14T21:44:43.700Z");

}  // namespace

TEST_SUITE("sidecar::credentials")
{
    TEST_CASE("container-credentials JSON always carries Token and a strict Expiration")
    {
        const auto body = nlohmann::json::parse(cw::container_credentials_json(sample(), k_stated));
        CHECK(body["AccessKeyId"] == "CWAKIAEXAMPLE1234567");
        CHECK(body["SecretAccessKey"] == "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY");
        REQUIRE(body.contains("Token"));
        CHECK(body["Token"] == "");
        CHECK(body["Expiration"] == "2026-03-14T21:44:43Z");
    }

    TEST_CASE("credential_process JSON is version 1 and omits an empty SessionToken")
    {
        const auto empty = nlohmann::json::parse(cw::credential_process_json(sample(), k_stated));
        CHECK(empty["Version"] == 1);
        CHECK_FALSE(empty.contains("SessionToken"));
        CHECK(empty["Expiration"] == "2026-03-14T21:44:43Z");
        const auto with_token = nlohmann::json::parse(cw::credential_process_json(sample("session"), k_stated));
        CHECK(with_token["SessionToken"] == "session");
    }

    TEST_CASE("the lifetime is measured on the upstream's clock and ends on ours, wherever the node clock stands")
    {
        auto credentials = sample();
        // The node is 2 h ahead: the upstream says it is 19:29:43, and the key ends at 19:44:43.7 by its clock.
        credentials.upstream_date = *cw::parse_rfc3339("2026-03-14T19:29:43Z");
        credentials.expiration = *cw::parse_rfc3339("2026-03-14T19:44:43.700Z");
        credentials.sent = cw::SteadyTime{std::chrono::hours{5}};
        CHECK(credentials.lifetime() == std::chrono::minutes{15} + cw::Millis{700});
        CHECK(credentials.clock_skew() == std::chrono::hours{2});
        // `Date` may be up to a second old when the key is stamped: that second
        // is taken off, so the end is never later than the real one.
        CHECK(credentials.end() == credentials.sent + std::chrono::minutes{15} - cw::Millis{300});
    }
}

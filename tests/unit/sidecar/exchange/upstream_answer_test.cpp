#include <doctest/doctest.h>

#include <vector>

#include "common/time_format.hpp"
#include "sidecar/exchange/upstream_answer.hpp"

namespace {

const cw::SystemTime k_now = *cw::parse_rfc3339("2026-03-14T21:29:43Z");

}  // namespace

TEST_SUITE("sidecar::upstream_answer")
{
    TEST_CASE("a container-credentials answer from the seed document")
    {
        const auto result = cw::parse_upstream_answer(cw::ExchangeMode::container_credentials,
                                                      R"({"AccessKeyId": "CWAKIAEXAMPLE1234567",
            "SecretAccessKey": "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "Token": "",
            "Expiration": "2026-03-14T21:44:43Z", "attributes": {"cw-role": "x"}, "multiAttributes": {}})",
                                                      k_now);
        REQUIRE(std::holds_alternative<cw::Credentials>(result));
        const auto& credentials = std::get<cw::Credentials>(result);
        CHECK(credentials.access_key_id == "CWAKIAEXAMPLE1234567");
        CHECK(credentials.secret_access_key == "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY");
        CHECK(credentials.session_token.empty());
        CHECK(credentials.lifetime() == std::chrono::minutes{15});
    }

    TEST_CASE("an oidc answer in camelCase, with fractional seconds and an offset")
    {
        const auto result = cw::parse_upstream_answer(cw::ExchangeMode::oidc,
                                                      R"({"accessKeyId": "CWAKOIDC", "secretKey": "s3cr3t",
            "principalName": "role/x", "expiry": "2026-03-14T23:29:43.5+01:00"})",
                                                      k_now);
        REQUIRE(std::holds_alternative<cw::Credentials>(result));
        CHECK(std::get<cw::Credentials>(result).lifetime() == cw::Millis{3'600'500});
    }

    TEST_CASE("unusable answers are errors that never quote the body")
    {
        const std::vector<std::pair<std::string, std::string>> cases{
            {"not json", "answer is not JSON"},
            {"[]", "answer is not a JSON object"},
            {R"({"SecretAccessKey":"TOPSECRET","Expiration":"2026-03-14T21:44:43Z"})", "missing or empty AccessKeyId"},
            {R"({"AccessKeyId":"A","SecretAccessKey":"","Expiration":"2026-03-14T21:44:43Z"})",
             "missing or empty SecretAccessKey"},
            {R"({"AccessKeyId":"A","SecretAccessKey":"TOPSECRET"})", "missing Expiration"},
            {R"({"AccessKeyId":"A","SecretAccessKey":"TOPSECRET","Expiration":"tomorrow"})",
             "Expiration is not an RFC 3339 time"},
            {R"({"AccessKeyId":"A","SecretAccessKey":"TOPSECRET","Expiration":"2026-03-14T21:00:00Z"})",
             "Expiration is already in the past"},
            {R"({"AccessKeyId":"A","SecretAccessKey":"TOPSECRET","Token":5,"Expiration":"2026-03-14T21:44:43Z"})",
             "Token is not a string"},
            {R"({"AccessKeyId":"A","SecretAccessKey":"TOPSECRET","Expiration":"2026-03-15T09:31:43Z"})",
             "Expiration is more than 12 h away: is the upstream's Date wrong?"},
        };
        for (const auto& [body, reason] : cases) {
            CAPTURE(body);
            const auto result = cw::parse_upstream_answer(cw::ExchangeMode::container_credentials, body, k_now);
            REQUIRE(std::holds_alternative<cw::AnswerError>(result));
            CHECK(std::get<cw::AnswerError>(result).reason == reason);
            CHECK(std::get<cw::AnswerError>(result).reason.find("TOPSECRET") == std::string::npos);
        }
    }

    TEST_CASE("a null Token is the same as an empty one")
    {
        const auto result = cw::parse_upstream_answer(
            cw::ExchangeMode::container_credentials,
            R"({"AccessKeyId":"A","SecretAccessKey":"S","Token":null,"Expiration":"2026-03-14T21:44:43Z"})", k_now);
        REQUIRE(std::holds_alternative<cw::Credentials>(result));
        CHECK(std::get<cw::Credentials>(result).session_token.empty());
    }
}

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/time_format.hpp"
#include "sidecar/credentials.hpp"

namespace {

cw::Credentials sample(std::string session_token = "")
{
    const auto obtained = *cw::parse_rfc3339("2026-03-14T21:29:43Z");
    return {"CWAKIAEXAMPLE1234567", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", std::move(session_token),
            *cw::parse_rfc3339("2026-03-14T21:44:43.700Z"), obtained};
}

}  // namespace

TEST_SUITE("sidecar::credentials")
{
    TEST_CASE("container-credentials JSON always carries Token and a strict Expiration")
    {
        const auto body = nlohmann::json::parse(cw::container_credentials_json(sample()));
        CHECK(body["AccessKeyId"] == "CWAKIAEXAMPLE1234567");
        CHECK(body["SecretAccessKey"] == "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY");
        REQUIRE(body.contains("Token"));
        CHECK(body["Token"] == "");
        CHECK(body["Expiration"] == "2026-03-14T21:44:43Z");
    }

    TEST_CASE("credential_process JSON is version 1 and omits an empty SessionToken")
    {
        const auto empty = nlohmann::json::parse(cw::credential_process_json(sample()));
        CHECK(empty["Version"] == 1);
        CHECK_FALSE(empty.contains("SessionToken"));
        CHECK(empty["Expiration"] == "2026-03-14T21:44:43Z");
        const auto with_token = nlohmann::json::parse(cw::credential_process_json(sample("session")));
        CHECK(with_token["SessionToken"] == "session");
    }
}

#include <doctest/doctest.h>

#include "common/time_format.hpp"
#include "jwt_builder.hpp"
#include "sidecar/inspect/inspect.hpp"

namespace {

const cw::SystemTime k_now = *cw::parse_rfc3339("2026-11-23T12:00:00Z");

// A projected-token-shaped JWT issued `age` seconds before k_now, living `lifetime` seconds.
std::string token(long age, long lifetime, const std::string& audience = "https://coreweave.com/iam",
                  const std::string& subject = "system:serviceaccount:ml:trainer")
{
    const long iat = std::chrono::duration_cast<std::chrono::seconds>(k_now.time_since_epoch()).count() - age;
    const std::string payload = R"({"iss":"https://oidc.cw.example/abc","sub":")" + subject + R"(","aud":[")" +
                                audience + R"("],"iat":)" + std::to_string(iat) + R"(,"exp":)" +
                                std::to_string(iat + lifetime) + "}";
    return cw::test::jwt_with(payload);
}

const cw::Check& find(const std::vector<cw::Check>& checks, const std::string& name)
{
    for (const auto& check : checks) {
        if (check.name == name) {
            return check;
        }
    }
    FAIL("no check named " << name);
    return checks.front();
}

cw::TokenInspection inspect(const std::optional<std::string>& jwt, const std::string& org = "")
{
    return cw::inspect_token(jwt, "No such file or directory", "https://coreweave.com/iam", org, k_now);
}

}  // namespace

TEST_SUITE("sidecar::inspect")
{
    TEST_CASE("a fresh projected token passes every check and yields the policy principal")
    {
        const auto report = inspect(token(600, 3600), "my-org");
        for (const auto& check : report.checks) {
            CAPTURE(check.name);
            CAPTURE(check.detail);
            CHECK(check.verdict == cw::Verdict::ok);
        }
        CHECK(report.principal == "role/https://oidc.cw.example/abc:system:serviceaccount:ml:trainer");
        CHECK(report.bucket_principal ==
              R"({"AWS": "arn:aws:iam::my-org:role/https://oidc.cw.example/abc:system:serviceaccount:ml:trainer"})");
        CHECK(find(report.checks, "kubelet refresh").detail.find("renews it after 48m") != std::string::npos);
    }

    TEST_CASE("a missing file says to check the volume mount")
    {
        const auto report = inspect(std::nullopt);
        CHECK(find(report.checks, "readable").verdict == cw::Verdict::fail);
        CHECK(find(report.checks, "readable").detail.find("volume mounted") != std::string::npos);
    }

    TEST_CASE("a wrong audience fails and names the one needed")
    {
        const auto report = inspect(token(60, 3600, "sts.amazonaws.com"));
        const auto& check = find(report.checks, "audience");
        CHECK(check.verdict == cw::Verdict::fail);
        CHECK(check.detail.find("needs https://coreweave.com/iam") != std::string::npos);
    }

    TEST_CASE("an expired token fails, and one kubelet should have renewed warns")
    {
        CHECK(find(inspect(token(4000, 3600)).checks, "not expired").verdict == cw::Verdict::fail);
        const auto stale = inspect(token(3400, 3600));
        CHECK(find(stale.checks, "not expired").verdict == cw::Verdict::ok);
        CHECK(find(stale.checks, "kubelet refresh").verdict == cw::Verdict::warn);
    }

    TEST_CASE("something that is not a JWT fails without further checks")
    {
        const auto report = inspect(std::string{"not-a-token"});
        CHECK(find(report.checks, "JWT").verdict == cw::Verdict::fail);
        CHECK(report.principal.empty());
    }

    TEST_CASE("a non service-account subject is flagged")
    {
        CHECK(find(inspect(token(60, 3600, "https://coreweave.com/iam", "alice")).checks, "subject").verdict ==
              cw::Verdict::warn);
    }

    TEST_CASE("sidecar status: ready, failing, skewed, or on another token")
    {
        const nlohmann::json healthy = nlohmann::json::parse(R"({
            "version": "0.1.0", "uptime_seconds": 120, "ready": true,
            "token": {"fingerprint": "sha256:aaa"},
            "credentials": {"access_key_id": "CWAK…4567", "expires_in_seconds": 700, "life_left_percent": 78,
                            "clock_skew_seconds": 0.4, "clock_skew_warning": false},
            "last_exchange": {"result": "ok", "http_status": 200, "at": "2026-11-23T11:58:00Z"}})");
        for (const auto& check : cw::inspect_sidecar_status(healthy, "sha256:aaa")) {
            CAPTURE(check.name);
            CHECK(check.verdict == cw::Verdict::ok);
        }

        nlohmann::json failing = healthy;
        failing["ready"] = false;
        failing["last_exchange"] = {{"result", "rejected"}, {"http_status", 401}, {"error", "HTTP 401: bad audience"}, {"at", "x"}};
        const auto checks = cw::inspect_sidecar_status(failing, "sha256:bbb");
        CHECK(find(checks, "credentials").verdict == cw::Verdict::fail);
        CHECK(find(checks, "last exchange").verdict == cw::Verdict::fail);
        CHECK(find(checks, "last exchange").detail.find("rejected (HTTP 401): HTTP 401: bad audience") == 0);
        CHECK(find(checks, "same token").verdict == cw::Verdict::warn);

        nlohmann::json skewed = healthy;
        skewed["credentials"]["clock_skew_seconds"] = -95.0;
        skewed["credentials"]["clock_skew_warning"] = true;
        CHECK(find(cw::inspect_sidecar_status(skewed, "sha256:aaa"), "clock skew").verdict == cw::Verdict::warn);
    }

    TEST_CASE("relative times read naturally")
    {
        CHECK(cw::relative_time(cw::Millis{3'120'000}) == "in 52m");
        CHECK(cw::relative_time(cw::Millis{-180'400}) == "3m ago");
        CHECK(cw::relative_time(cw::Millis{7'250'000}) == "in 2h");
    }

    TEST_CASE("an unreadable accepted token file fails, and IMDS being on is stated")
    {
        const auto status = nlohmann::json::parse(R"({"callers": {
            "accepted_token_files": [{"file": "/s/ok", "readable": true},
                                     {"file": "/s/gone", "readable": false, "problem": "No such file or directory"}],
            "imds": {"enabled": true}}})");
        const auto checks = cw::inspect_caller_status(status);
        REQUIRE(checks.size() == 3);
        CHECK(checks[0].verdict == cw::Verdict::ok);
        CHECK(checks[1].verdict == cw::Verdict::fail);
        CHECK(checks[1].detail.find("/s/gone unreadable (No such file or directory)") == 0);
        CHECK(checks[2].name == "instance metadata");
        CHECK(cw::inspect_caller_status(nlohmann::json::object()).empty());
    }
}

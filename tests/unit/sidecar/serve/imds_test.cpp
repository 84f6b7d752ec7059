// IMDSv2 answers as a pure function of (request, sessions, view, now).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "sidecar/serve/imds.hpp"

using namespace std::chrono_literals;

namespace {

cw::HttpRequestHead request(std::string method, std::string path,
                            std::vector<std::pair<std::string, std::string>> x_headers = {})
{
    cw::HttpRequestHead head;
    head.method = std::move(method);
    head.path = std::move(path);
    head.x_headers = std::move(x_headers);
    head.host = "127.0.0.1:9911";  // AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:9911
    return head;
}

std::shared_ptr<const cw::Served> served(std::string token)
{
    auto out = std::make_shared<cw::Served>();
    out->credentials.obtained_at = std::chrono::system_clock::now();
    out->body = nlohmann::json{{"AccessKeyId", "CWAKIAEXAMPLE1234567"},
                               {"SecretAccessKey", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"},
                               {"Token", token},
                               {"Expiration", "2026-03-14T21:44:43Z"}}
                    .dump();
    return out;
}

// A pod with a session: the token an SDK would hold after its PUT.
struct Rig {
    cw::ImdsSessions sessions;
    cw::ImdsView view{served(""), "e2e-app", "", ""};
    cw::SteadyTime now{std::chrono::hours{1000}};

    cw::ImdsAnswer answer(const cw::HttpRequestHead& head) { return cw::imds_answer(head, sessions, view, now); }

    std::string session(const std::string& ttl = "60")
    {
        const auto put = answer(request("PUT", "/latest/api/token", {{"x-aws-ec2-metadata-token-ttl-seconds", ttl}}));
        REQUIRE(put.response.status == 200);
        CHECK(put.session_issued);
        return put.response.body;
    }
};

}  // namespace

TEST_SUITE("sidecar::imds")
{
    TEST_CASE("a PUT with a TTL gets a 32-byte random session token that opens the credentials")
    {
        Rig rig;
        const std::string token = rig.session();
        CHECK(token.size() == 64);
        CHECK(token != rig.session());
        const auto list = rig.answer(
            request("GET", "/latest/meta-data/iam/security-credentials/", {{"x-aws-ec2-metadata-token", token}}));
        CHECK(list.response.status == 200);
        CHECK(list.response.body == "e2e-app");
        // An endpoint configured with a trailing slash doubles the first one.
        CHECK(cw::is_imds_path("//latest/api/token"));
        CHECK(rig.answer(request("GET", "//latest/meta-data/iam/security-credentials/",
                                 {{"x-aws-ec2-metadata-token", token}}))
                  .response.body == "e2e-app");
        const auto creds = rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/e2e-app",
                                              {{"x-aws-ec2-metadata-token", token}}));
        REQUIRE(creds.response.status == 200);
        CHECK(creds.credentials_served);
        const auto document = nlohmann::json::parse(creds.response.body);
        CHECK(document["Code"] == "Success");
        CHECK(document["Type"] == "AWS-HMAC");
        CHECK(document["AccessKeyId"] == "CWAKIAEXAMPLE1234567");
        CHECK(document["Expiration"] == "2026-03-14T21:44:43Z");
        CHECK(document.contains("LastUpdated"));
        // Present for botocore, null so Ruby and Go send no empty security-token header.
        REQUIRE(document.contains("Token"));
        CHECK(document["Token"].is_null());
    }

    TEST_CASE("a real session token is passed through as a string")
    {
        Rig rig;
        rig.view.served = served("session-token-value");
        const auto creds = rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/e2e-app",
                                              {{"x-aws-ec2-metadata-token", rig.session()}}));
        CHECK(nlohmann::json::parse(creds.response.body)["Token"] == "session-token-value");
    }

    TEST_CASE("with a valid session, methods other than GET and HEAD get 405 and no credentials")
    {
        Rig rig;
        const std::string token = rig.session();
        for (const std::string method : {"POST", "PUT", "DELETE", "PATCH"}) {
            CAPTURE(method);
            const auto answer = rig.answer(request(method, "/latest/meta-data/iam/security-credentials/e2e-app",
                                                   {{"x-aws-ec2-metadata-token", token}}));
            CHECK(answer.response.status == 405);
            CHECK(answer.response.body.find("SecretAccessKey") == std::string::npos);
            CHECK_FALSE(answer.credentials_served);
        }
        CHECK(rig.answer(request("HEAD", "/latest/meta-data/iam/security-credentials/e2e-app",
                                 {{"x-aws-ec2-metadata-token", token}}))
                  .response.status == 200);
    }

    TEST_CASE("refusals: bad TTL 400, X-Forwarded-For 403, GET of the token path 405, no or bad session 401")
    {
        Rig rig;
        for (const std::string ttl : {"0", "21601", "-1", "abc", "", "60s", "99999999999999999999"}) {
            CAPTURE(ttl);
            CHECK(rig.answer(request("PUT", "/latest/api/token", {{"x-aws-ec2-metadata-token-ttl-seconds", ttl}}))
                      .response.status == 400);
        }
        CHECK(rig.answer(request("PUT", "/latest/api/token")).response.status == 400);
        CHECK(rig.answer(request("PUT", "/latest/api/token",
                                 {{"x-aws-ec2-metadata-token-ttl-seconds", "1"},
                                  {"x-aws-ec2-metadata-token-ttl-seconds", "2"}}))
                  .response.status == 400);
        CHECK(rig.answer(request("PUT", "/latest/api/token", {{"x-aws-ec2-metadata-token-ttl-seconds", "21600"}}))
                  .response.status == 200);
        CHECK(rig.answer(request("PUT", "/latest/api/token",
                                 {{"x-aws-ec2-metadata-token-ttl-seconds", "60"}, {"x-forwarded-for", "10.0.0.1"}}))
                  .response.status == 403);
        const std::string token = rig.session();
        CHECK(rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/e2e-app",
                                 {{"x-aws-ec2-metadata-token", token}, {"x-forwarded-for", "10.0.0.1"}}))
                  .response.status == 403);
        const auto get_token = rig.answer(request("GET", "/latest/api/token"));
        CHECK(get_token.response.status == 405);
        for (const auto& path :
             {"/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/e2e-app",
              "/latest/meta-data/", "/latest/dynamic/instance-identity/document"}) {
            CAPTURE(path);
            CHECK(rig.answer(request("GET", path)).response.status == 401);
            CHECK(rig.answer(request("GET", path, {{"x-aws-ec2-metadata-token", "0123"}})).response.status == 401);
            CHECK(rig.answer(request("GET", path,
                                     {{"x-aws-ec2-metadata-token", token}, {"x-aws-ec2-metadata-token", token}}))
                      .response.status == 401);
        }
        CHECK(rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/other-role",
                                 {{"x-aws-ec2-metadata-token", token}}))
                  .response.status == 404);
    }

    TEST_CASE("only requests addressed to loopback or 169.254.169.254 are answered: DNS rebinding gets 403")
    {
        Rig rig;
        const std::string token = rig.session();
        const auto put_to = [&rig](std::optional<std::string> host) {
            auto head = request("PUT", "/latest/api/token", {{"x-aws-ec2-metadata-token-ttl-seconds", "60"}});
            head.host = std::move(host);
            return rig.answer(head).response.status;
        };
        const auto get_with = [&rig, &token](std::optional<std::string> host) {
            auto head = request("GET", "/latest/meta-data/iam/security-credentials/e2e-app",
                                {{"x-aws-ec2-metadata-token", token}});
            head.host = std::move(host);
            return rig.answer(head).response.status;
        };
        const std::vector<std::string> metadata_hosts = {"127.0.0.1:9911",     "127.0.0.1",  "localhost:80",
                                                         "[::1]:9911",         "[::1]",      "169.254.169.254",
                                                         "169.254.169.254:80", "127.3.2.1:1"};
        for (const auto& host : metadata_hosts) {
            CAPTURE(host);
            CHECK(get_with(host) == 200);
        }
        for (const auto& host : metadata_hosts) {
            CAPTURE(host);
            CHECK(put_to(host) == 200);
        }
        const std::vector<std::optional<std::string>> foreign_hosts = {
            "attacker.example", "attacker.example:9911",  "127.0.0.1.attacker.example",
            "[::1]x",           "169.254.169.254.nip.io", "",
            std::nullopt};
        for (const auto& host : foreign_hosts) {
            CAPTURE(host.value_or("(no Host)"));
            CHECK(put_to(host) == 403);
            CHECK(get_with(host) == 403);
        }
    }

    TEST_CASE("requests relayed by a proxy are refused, whichever header says so")
    {
        Rig rig;
        const std::string token = rig.session();
        for (const char* header : {"x-forwarded-for", "x-real-ip"}) {
            CAPTURE(header);
            CHECK(rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/e2e-app",
                                     {{"x-aws-ec2-metadata-token", token}, {header, "10.0.0.1"}}))
                      .response.status == 403);
        }
        auto relayed =
            request("GET", "/latest/meta-data/iam/security-credentials/e2e-app", {{"x-aws-ec2-metadata-token", token}});
        relayed.relayed = true;  // Forwarded: or Via: (common/http_request.cpp)
        CHECK(rig.answer(relayed).response.status == 403);
        relayed.relayed = false;
        CHECK(rig.answer(relayed).response.status == 200);
    }

    TEST_CASE("a session token stops working at its TTL")
    {
        Rig rig;
        const std::string token = rig.session("2");
        const auto get =
            request("GET", "/latest/meta-data/iam/security-credentials/", {{"x-aws-ec2-metadata-token", token}});
        rig.now += 1999ms;
        CHECK(rig.answer(get).response.status == 200);
        rig.now += 1ms;
        CHECK(rig.answer(get).response.status == 401);
    }

    TEST_CASE("a flood of PUTs pushes out nobody's session: tokens hold nothing on the sidecar")
    {
        Rig rig;
        const std::string mine = rig.session("21600");
        for (int i = 0; i < 10'000; ++i) {
            rig.session("21600");
        }
        CHECK(rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/",
                                 {{"x-aws-ec2-metadata-token", mine}}))
                  .response.status == 200);
    }

    TEST_CASE("a session token cannot be forged, stretched or carried to another process")
    {
        Rig rig;
        const std::string token = rig.session("60");
        const auto opens = [&rig](const std::string& candidate) {
            return rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/",
                                      {{"x-aws-ec2-metadata-token", candidate}}))
                       .response.status == 200;
        };
        REQUIRE(opens(token));
        // Every single changed digit: the expiry (stretching it), the nonce, the seal.
        for (std::size_t i = 0; i < token.size(); ++i) {
            std::string changed = token;
            changed[i] = changed[i] == 'f' ? '0' : 'f';
            CAPTURE(i);
            CHECK_FALSE(opens(changed));
        }
        CHECK_FALSE(opens(token.substr(0, 62)));
        CHECK_FALSE(opens(token + "00"));
        CHECK_FALSE(opens(std::string(64, 'g')));
        CHECK_FALSE(opens(std::string(64, '0')));
        // Another sidecar (another key) does not know it.
        cw::ImdsSessions other;
        CHECK_FALSE(other.valid(token, rig.now));
    }

    TEST_CASE("no credentials to serve is a 503, never a document")
    {
        Rig rig;
        rig.view.served = nullptr;
        rig.view.unavailable = "last exchange: rejected";
        const auto creds = rig.answer(request("GET", "/latest/meta-data/iam/security-credentials/e2e-app",
                                              {{"x-aws-ec2-metadata-token", rig.session()}}));
        CHECK(creds.response.status == 503);
        CHECK_FALSE(creds.credentials_served);
    }

    TEST_CASE("region paths answer only when a region is configured")
    {
        Rig rig;
        const std::string token = rig.session();
        const auto region = request("GET", "/latest/meta-data/placement/region", {{"x-aws-ec2-metadata-token", token}});
        CHECK(rig.answer(region).response.status == 404);
        rig.view.region = "US-EAST-04";
        CHECK(rig.answer(region).response.body == "US-EAST-04");
        const auto identity = rig.answer(
            request("GET", "/latest/dynamic/instance-identity/document", {{"x-aws-ec2-metadata-token", token}}));
        CHECK(nlohmann::json::parse(identity.response.body)["region"] == "US-EAST-04");
    }

    TEST_CASE("the role is the service account's name, or cwcreds")
    {
        CHECK(cw::imds_role_name("system:serviceaccount:default:e2e-app") == "e2e-app");
        CHECK(cw::imds_role_name("system:serviceaccount:default:") == "cwcreds");
        CHECK(cw::imds_role_name("system:serviceaccount:ns:../../etc") == "cwcreds");
        CHECK(cw::imds_role_name("someone@example.com") == "cwcreds");
        CHECK(cw::imds_role_name("") == "cwcreds");
    }
}

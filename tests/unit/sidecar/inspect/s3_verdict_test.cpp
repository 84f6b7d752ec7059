#include <doctest/doctest.h>

#include "common/time_format.hpp"
#include "sidecar/inspect/s3_verdict.hpp"

namespace {

const cw::SystemTime k_now = *cw::parse_rfc3339("2026-11-23T12:00:00Z");

cw::S3Context context(const std::string& key = "")
{
    return {.target = {"my-bucket", key},
            .endpoint = "https://cwobject.com",
            .region = "US-EAST-04A",
            .masked_key_id = "CWAK…4567",
            .principal = "role/https://oidc.example/abc:system:serviceaccount:ml:trainer"};
}

cw::S3Answer answer(long status, const std::string& code, std::optional<cw::SystemTime> date = std::nullopt,
                    const std::string& transport_error = "")
{
    cw::S3Answer out;
    out.http_status = status;
    out.error_code = code;
    out.server_date = date;
    out.transport_error = transport_error;
    return out;
}

cw::S3Verdict classify(long status, const std::string& code, std::optional<cw::SystemTime> date = k_now,
                       const std::string& key = "")
{
    return cw::classify_s3_answer(answer(status, code, date), context(key), k_now);
}

bool has(const cw::S3Verdict& verdict, const std::string& text)
{
    return verdict.detail.find(text) != std::string::npos;
}

}  // namespace

TEST_SUITE("sidecar::s3_verdict")
{
    TEST_CASE("2xx is ok, and so is an empty object that cannot give its first byte")
    {
        CHECK(classify(200, "").cause == cw::S3Cause::ok);
        CHECK(has(classify(200, ""), "CWAK…4567 may list s3://my-bucket"));
        CHECK(classify(206, "", k_now, "a/b").cause == cw::S3Cause::ok);
        const auto empty = classify(416, "InvalidRange", k_now, "a/b");
        CHECK(empty.cause == cw::S3Cause::ok);
        CHECK(has(empty, "the object is empty"));
    }

    TEST_CASE("AccessDenied is a policy: the keys are valid, and the advice names the action and principal")
    {
        const auto bucket = classify(403, "AccessDenied");
        CHECK(bucket.cause == cw::S3Cause::policy);
        CHECK(has(bucket, "denied by a bucket or organization policy: the keys are valid"));
        CHECK(has(bucket, "s3:ListBucket on arn:aws:s3:::my-bucket to role/https://oidc.example/abc:"));
        const auto object = classify(403, "AccessDenied", k_now, "x/y.txt");
        CHECK(has(object, "s3:GetObject on arn:aws:s3:::my-bucket/x/y.txt"));
        CHECK(has(object, "missing object"));
        auto no_principal = context();
        no_principal.principal.clear();
        CHECK(has(cw::classify_s3_answer(answer(403, "AccessDenied"), no_principal, k_now),
                  "`cwcreds inspect` prints it"));
    }

    TEST_CASE("unknown key ids and refused session tokens are key problems, a wrong secret a signature one")
    {
        const auto unknown = classify(403, "InvalidAccessKeyId");
        CHECK(unknown.cause == cw::S3Cause::key);
        CHECK(has(unknown, "CWAK…4567 is not known to https://cwobject.com"));
        CHECK(classify(400, "InvalidToken").cause == cw::S3Cause::key);
        CHECK(classify(400, "ExpiredToken").cause == cw::S3Cause::key);
        const auto secret = classify(403, "SignatureDoesNotMatch");
        CHECK(secret.cause == cw::S3Cause::signature);
        CHECK(has(secret, "secret"));
        const auto region = classify(400, "AuthorizationHeaderMalformed");
        CHECK(region.cause == cw::S3Cause::signature);
        CHECK(has(region, "--s3-region"));
    }

    TEST_CASE("a skewed clock shows both clocks, whatever code comes with a refusal")
    {
        const auto skewed = classify(403, "RequestTimeTooSkewed", k_now + std::chrono::minutes{20});
        CHECK(skewed.cause == cw::S3Cause::clock);
        CHECK(has(skewed,
                  "this machine's clock reads 2026-11-23T12:00:00Z, the endpoint's 2026-11-23T12:20:00Z "
                  "(20m behind)"));
        CHECK(has(classify(403, "RequestTimeTooSkewed", k_now - std::chrono::minutes{16}), "(16m ahead)"));
        CHECK(has(classify(403, "RequestTimeTooSkewed", std::nullopt), "sent no Date"));
        // A store that answers a skew with another code: the Date tells.
        CHECK(classify(403, "AccessDenied", k_now + std::chrono::hours{2}).cause == cw::S3Cause::clock);
        CHECK(classify(403, "", k_now - std::chrono::minutes{16}).cause == cw::S3Cause::clock);
        // Within S3's 15 minutes, the code stands.
        CHECK(classify(403, "AccessDenied", k_now + std::chrono::minutes{14}).cause == cw::S3Cause::policy);
    }

    TEST_CASE("a missing bucket or object, and answers from elsewhere")
    {
        CHECK(classify(404, "NoSuchBucket").cause == cw::S3Cause::not_found);
        CHECK(classify(404, "").cause == cw::S3Cause::not_found);
        CHECK(has(classify(404, ""), "no bucket my-bucket"));
        const auto key = classify(404, "NoSuchKey", k_now, "x");
        CHECK(key.cause == cw::S3Cause::not_found);
        CHECK(has(key, "the keys work"));
        CHECK(classify(301, "PermanentRedirect").cause == cw::S3Cause::endpoint);
        CHECK(classify(503, "SlowDown").cause == cw::S3Cause::endpoint);
        CHECK(classify(400, "Weird").cause == cw::S3Cause::other);
    }

    TEST_CASE("no answer at all is the endpoint, with curl's reason and the flags that fix it")
    {
        const auto verdict =
            cw::classify_s3_answer(answer(0, "", std::nullopt, "SSL peer certificate was not OK"), context(), k_now);
        CHECK(verdict.cause == cw::S3Cause::endpoint);
        CHECK(has(verdict, "no answer from https://cwobject.com: SSL peer certificate was not OK"));
        CHECK(has(verdict, "--s3-endpoint"));
        CHECK(has(verdict, "--ca-file"));
    }

    TEST_CASE("the error code is read from the XML body and only when it looks like one")
    {
        CHECK(
            cw::s3_error_code(R"(<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>x</Message></Error>)") ==
            "AccessDenied");
        CHECK(cw::s3_error_code("<Error><Code>Not a code</Code></Error>").empty());
        CHECK(cw::s3_error_code("<Error><Code></Code></Error>").empty());
        CHECK(cw::s3_error_code("<Error><Code>Unclosed").empty());
        CHECK(cw::s3_error_code("").empty());
    }

    TEST_CASE("s3 URIs name a valid bucket and an optional key")
    {
        const auto both = cw::parse_s3_uri("s3://my-bucket/a/b c.txt");
        REQUIRE(std::holds_alternative<cw::S3Target>(both));
        CHECK(std::get<cw::S3Target>(both).bucket == "my-bucket");
        CHECK(std::get<cw::S3Target>(both).key == "a/b c.txt");
        CHECK(std::get<cw::S3Target>(cw::parse_s3_uri("s3://my-bucket")).key.empty());
        CHECK(std::get<cw::S3Target>(cw::parse_s3_uri("s3://my-bucket/")).key.empty());
        for (const char* bad :
             {"my-bucket", "https://my-bucket", "s3://", "s3://ab", "s3://My_Bucket/x", "s3://evil.com@x/y"}) {
            CAPTURE(bad);
            CHECK(std::holds_alternative<std::string>(cw::parse_s3_uri(bad)));
        }
    }

    TEST_CASE("request URLs: virtual-hosted by default, path style on request or on an IP address")
    {
        const cw::S3Target bucket{"my-bucket", ""};
        const cw::S3Target object{"my-bucket", "dir/a b+c~.txt"};
        using cw::S3Addressing;
        CHECK(cw::s3_request_url("https://cwobject.com", bucket, S3Addressing::virtual_hosted) ==
              "https://my-bucket.cwobject.com/?max-keys=0");
        CHECK(cw::s3_request_url("http://cwlota.com/", object, S3Addressing::virtual_hosted) ==
              "http://my-bucket.cwlota.com/dir/a%20b%2Bc~.txt");
        CHECK(cw::s3_request_url("http://localhost:9000", bucket, S3Addressing::path) ==
              "http://localhost:9000/my-bucket?max-keys=0");
        CHECK(cw::s3_request_url("http://localhost:9000", object, S3Addressing::path) ==
              "http://localhost:9000/my-bucket/dir/a%20b%2Bc~.txt");
        CHECK(cw::s3_request_url("http://127.0.0.1:9000", bucket, S3Addressing::virtual_hosted) ==
              "http://127.0.0.1:9000/my-bucket?max-keys=0");
        CHECK(cw::s3_request_url("http://[::1]:9000", bucket, S3Addressing::virtual_hosted) ==
              "http://[::1]:9000/my-bucket?max-keys=0");
        CHECK_FALSE(cw::s3_request_url("cwobject.com", bucket, S3Addressing::virtual_hosted));
        CHECK_FALSE(cw::s3_request_url("ftp://cwobject.com", bucket, S3Addressing::virtual_hosted));
        CHECK_FALSE(cw::s3_request_url("https://user@cwobject.com", bucket, S3Addressing::virtual_hosted));
    }
}

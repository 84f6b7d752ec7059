#include <doctest/doctest.h>

#include "common/redact.hpp"

TEST_SUITE("common::redact")
{
    TEST_CASE("a masked access key id keeps only its ends")
    {
        const std::string masked = cw::mask_access_key_id("CWAKIAEXAMPLE1234567");
        CHECK(masked == "CWAK…4567");
        CHECK(masked.find("EXAMPLE") == std::string::npos);
        CHECK(cw::mask_access_key_id("SHORTKEY") == "…EY");
        CHECK(cw::mask_access_key_id("") == "…");
    }

    TEST_CASE("a fingerprint tells tokens apart without revealing them")
    {
        const std::string a = cw::fingerprint("token-a");
        CHECK(a.rfind("sha256:", 0) == 0);
        CHECK(a.size() == 7 + 12);
        CHECK(a == cw::fingerprint("token-a"));
        CHECK(a != cw::fingerprint("token-b"));
    }

    TEST_CASE("an excerpt hides JWTs and key-like strings an upstream may echo")
    {
        const std::string jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2lnbmF0dXJlc2lnbmF0dXJl";
        const std::string secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY";
        const std::string body = R"({"code":16,"message":"token )" + jwt + " rejected, key " + secret + R"("})";
        const std::string excerpt = cw::sanitize_excerpt(body);
        CHECK(excerpt.find(jwt) == std::string::npos);
        CHECK(excerpt.find(secret) == std::string::npos);
        CHECK(excerpt.find("eyJ") == std::string::npos);
        CHECK(excerpt.find("rejected") != std::string::npos);
        CHECK(excerpt.find("<redacted>") != std::string::npos);
    }

    TEST_CASE("an excerpt hides an access key id, the shortest secret-like run")
    {
        const std::string key_id = "CWAKIAEXAMPLE1234567";  // 20 characters
        const std::string excerpt = cw::sanitize_excerpt("no such key " + key_id + " here");
        CHECK(excerpt.find(key_id) == std::string::npos);
        CHECK(excerpt == "no such key <redacted> here");
    }

    TEST_CASE("an excerpt is short, printable ASCII")
    {
        const std::string excerpt = cw::sanitize_excerpt(std::string(1000, 'a') + "\r\n\x01 ok \xC3\xA9", 40);
        CHECK(excerpt.size() <= 40 + 3);
        const std::string noisy = cw::sanitize_excerpt("line one\r\nline\ttwo \xC3\xA9");
        CHECK(noisy == "line one  line two ??");
    }
}

#include <doctest/doctest.h>

#include "common/jwt_claims.hpp"
#include "common/time_format.hpp"

namespace {

std::string base64url(const std::string& text)
{
    static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (const unsigned char c : text) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(alphabet[(buffer >> bits) & 0x3F]);
        }
    }
    if (bits > 0) {
        out.push_back(alphabet[(buffer << (6 - bits)) & 0x3F]);
    }
    return out;
}

std::string jwt_with(const std::string& payload)
{
    return base64url(R"({"alg":"RS256","typ":"JWT"})") + "." + base64url(payload) + ".c2lnbmF0dXJl";
}

}  // namespace

TEST_SUITE("common::jwt_claims")
{
    TEST_CASE("reads issuer, subject, audience and times of a projected token")
    {
        const auto token = jwt_with(R"({"iss":"https://oidc.example/abc","sub":"system:serviceaccount:default:app",)"
                                    R"("aud":["https://coreweave.com/iam"],"iat":1773520000,"nbf":1773520000,"exp":1773523600})");
        const auto result = cw::decode_jwt_claims(token);
        REQUIRE(std::holds_alternative<cw::JwtClaims>(result));
        const auto& claims = std::get<cw::JwtClaims>(result);
        CHECK(claims.issuer == "https://oidc.example/abc");
        CHECK(claims.subject == "system:serviceaccount:default:app");
        CHECK(claims.audience == std::vector<std::string>{"https://coreweave.com/iam"});
        CHECK(claims.expires_at == cw::SystemTime{std::chrono::seconds{1773523600}});
        CHECK(claims.issued_at == cw::SystemTime{std::chrono::seconds{1773520000}});
    }

    TEST_CASE("a single-string audience is a one-element list")
    {
        const auto result = cw::decode_jwt_claims(jwt_with(R"({"aud":"https://coreweave.com/iam"})"));
        REQUIRE(std::holds_alternative<cw::JwtClaims>(result));
        CHECK(std::get<cw::JwtClaims>(result).audience == std::vector<std::string>{"https://coreweave.com/iam"});
    }

    TEST_CASE("says why something is not a JWT")
    {
        for (const std::string& bad : {std::string{"hello"}, std::string{"a.b"}, std::string{"a.b.c.d"},
                                      std::string{"x.!!!.y"}, jwt_with("[1,2]"), jwt_with("not json")}) {
            CAPTURE(bad);
            const auto result = cw::decode_jwt_claims(bad);
            REQUIRE(std::holds_alternative<cw::JwtError>(result));
            CHECK(std::get<cw::JwtError>(result).reason.find("not a JWT") == 0);
        }
    }

    TEST_CASE("base64url decoding accepts unpadded input and rejects foreign characters")
    {
        CHECK(cw::base64url_decode("aGVsbG8") == "hello");
        CHECK(cw::base64url_decode("aGVsbG8=") == "hello");
        CHECK_FALSE(cw::base64url_decode("aGV+bG8"));
        CHECK_FALSE(cw::base64url_decode("a"));
    }
}

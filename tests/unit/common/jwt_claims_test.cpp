#include <doctest/doctest.h>

#include "common/jwt_claims.hpp"
#include "common/time_format.hpp"
#include "jwt_builder.hpp"

using cw::test::jwt_with;

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

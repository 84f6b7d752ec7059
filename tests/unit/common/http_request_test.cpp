#include <doctest/doctest.h>

#include "common/http_request.hpp"

namespace {

cw::HttpParseResult parse(std::string_view text, std::size_t max_head = 16 * 1024)
{
    return cw::parse_http_request_head(text, max_head);
}

const cw::HttpRequestHead& head(const cw::HttpParseResult& result)
{
    REQUIRE(std::holds_alternative<cw::HttpRequestHead>(result));
    return std::get<cw::HttpRequestHead>(result);
}

int error_status(const cw::HttpParseResult& result)
{
    REQUIRE(std::holds_alternative<cw::HttpParseError>(result));
    return std::get<cw::HttpParseError>(result).status;
}

}  // namespace

TEST_SUITE("common::http_request")
{
    TEST_CASE("an SDK's credentials request")
    {
        const std::string text = "GET /v1/credentials HTTP/1.1\r\nHost: 127.0.0.1:9911\r\n"
                                 "Authorization:  eyJhbGci.eyJzdWIi.sig \r\nAccept-Encoding: identity\r\n\r\n";
        const auto parsed = parse(text + "GET /next");
        const auto& request = head(parsed);
        CHECK(request.method == "GET");
        CHECK(request.path == "/v1/credentials");
        CHECK(request.has_authorization);
        CHECK(request.authorization == "eyJhbGci.eyJzdWIi.sig");
        CHECK(request.keep_alive);
        CHECK_FALSE(request.has_body);
        CHECK(request.host == "127.0.0.1:9911");
        CHECK_FALSE(request.relayed);
        CHECK(request.head_size == text.size());
    }

    TEST_CASE("a proxy's Forwarded or Via header marks the request relayed, and two Host headers are refused")
    {
        CHECK(head(parse("GET / HTTP/1.1\r\nHost: a\r\nForwarded: for=10.0.0.1\r\n\r\n")).relayed);
        CHECK(head(parse("GET / HTTP/1.1\r\nHost: a\r\nvia: 1.1 proxy\r\n\r\n")).relayed);
        CHECK_FALSE(head(parse("GET / HTTP/1.0\r\n\r\n")).host.has_value());
        CHECK(error_status(parse("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: attacker.example\r\n\r\n")) == 400);
    }

    TEST_CASE("an incomplete head asks for more")
    {
        CHECK(std::holds_alternative<cw::HttpNeedMore>(parse("GET /v1/credentials HTTP/1.1\r\nHost: x\r\n")));
        CHECK(std::holds_alternative<cw::HttpNeedMore>(parse("")));
    }

    TEST_CASE("keep-alive follows the version and the Connection header")
    {
        CHECK_FALSE(head(parse("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")).keep_alive);
        CHECK_FALSE(head(parse("GET / HTTP/1.0\r\n\r\n")).keep_alive);
        CHECK(head(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).keep_alive);
        CHECK_FALSE(head(parse("GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n")).keep_alive);
    }

    TEST_CASE("the query string is not part of the path, and bare LF lines are read")
    {
        CHECK(head(parse("GET /healthz?verbose=1 HTTP/1.1\n\n")).path == "/healthz");
    }

    TEST_CASE("bodies are noticed")
    {
        CHECK(head(parse("POST /v1/credentials HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")).has_body);
        CHECK(head(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")).has_body);
        CHECK_FALSE(head(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")).has_body);
        CHECK(head(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")).content_length == 5);
        CHECK(head(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")).transfer_encoded);
        CHECK(head(parse("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\n\r\n")).content_encoded);
        CHECK_FALSE(head(parse("POST / HTTP/1.1\r\nContent-Encoding: Identity\r\n\r\n")).content_encoded);
    }

    TEST_CASE("ambiguous or hostile heads are refused with the right status")
    {
        CHECK(error_status(parse("GET /\r\n\r\n")) == 400);
        CHECK(error_status(parse("GET / HTTP/2.0\r\n\r\n")) == 505);
        CHECK(error_status(parse("G(T / HTTP/1.1\r\n\r\n")) == 400);
        CHECK(error_status(parse("GET http://x/ HTTP/1.1\r\n\r\n")) == 400);
        CHECK(error_status(parse("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n")) == 400);
        CHECK(error_status(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n")) == 400);
        CHECK(error_status(parse("GET / HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n")) == 400);
        CHECK(error_status(parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")) == 400);
        CHECK(error_status(parse("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")) == 400);
        CHECK(error_status(parse(std::string("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n"))) == 400);
        CHECK(error_status(parse("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 64 * 1024)) == 414);
    }

    TEST_CASE("a head over the limit is refused, complete or not")
    {
        const std::string huge = "GET / HTTP/1.1\r\nAuthorization: " + std::string(20'000, 'x');
        CHECK(error_status(parse(huge)) == 431);
        CHECK(error_status(parse(huge + "\r\n\r\n")) == 431);
    }
}

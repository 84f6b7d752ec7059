// Parsing an HTTP/1.1 request head, and nothing more.
//
// The local servers answer small requests from memory; they need the method,
// the path, a handful of headers and how any body is sent. This parser is pure (bytes in, a value
// out), strict where leniency would be a smuggling or injection risk (folded
// lines, duplicate Content-Length or Authorization, control characters), and
// bounded: a head larger than the caller's limit is an error, not a buffer.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace cw {

struct HttpRequestHead {
    std::string method;
    std::string path;  // the target without its query string
    int minor_version = 1;  // HTTP/1.<minor>
    bool has_authorization = false;
    std::string authorization;  // trimmed of surrounding whitespace
    bool keep_alive = true;     // from the version and any Connection header
    bool has_body = false;      // Content-Length > 0 or any Transfer-Encoding
    std::size_t content_length = 0;
    bool transfer_encoded = false;    // any Transfer-Encoding (chunked): no length known up front
    bool content_encoded = false;     // a Content-Encoding other than identity (gzip, ...)
    std::optional<std::string> host;  // the Host header (at most one is accepted)
    bool relayed = false;             // a Forwarded or Via header: a proxy passed it on
    // Every `X-…` header, name lower-cased, in arrival order (duplicates kept):
    // extension protocols (EC2 instance metadata) read theirs from here.
    std::vector<std::pair<std::string, std::string>> x_headers;
    std::size_t head_size = 0;  // bytes consumed, terminator included
    // The body, when the server reads bodies (EventHttpServerOptions::max_body);
    // the parser leaves it empty.
    std::string body;
};

// The head is not complete yet: read more.
struct HttpNeedMore {};

// The request cannot be served; answer `status` and close.
struct HttpParseError {
    int status;  // 400, 414, 431, 505
    std::string reason;
};

using HttpParseResult = std::variant<HttpRequestHead, HttpNeedMore, HttpParseError>;

// Parses the head at the start of `buffer`; `max_head` bounds its size.
HttpParseResult parse_http_request_head(std::string_view buffer, std::size_t max_head);

}  // namespace cw

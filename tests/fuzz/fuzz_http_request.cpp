// Fuzz target: cw::parse_http_request_head, the local server's request parser.
//
// Every byte a local client sends reaches this parser first, before any
// authentication. The first input byte picks the head limit (so the bound is
// exercised at many sizes); the rest is the buffer. Invariants: no crash, no
// exception; an accepted head is within the limit and the buffer, has a
// token-character method and a path that starts with `/`, holds no query,
// space or control character, and carries an Authorization value without
// control characters (no header injection into logs or comparisons); the
// result depends only on the head (the same bytes followed by anything else
// parse the same); `need more` only while the buffer is within the limit;
// errors carry one of the documented statuses.
#include <algorithm>

#include "common/http_request.hpp"
#include "fuzz_support.hpp"

namespace {

bool is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

bool no_controls(std::string_view text, bool allow_space)
{
    return std::all_of(text.begin(), text.end(), [allow_space](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte == '\t' ? allow_space : byte > 0x20 || (allow_space && byte == 0x20) ? byte != 0x7F : false;
    });
}

void check_head(const cw::HttpRequestHead& head, std::string_view buffer, std::size_t max_head)
{
    FUZZ_CHECK(head.head_size > 0);
    FUZZ_CHECK(head.head_size <= buffer.size());
    FUZZ_CHECK(head.head_size <= max_head);
    FUZZ_CHECK(!head.method.empty());
    FUZZ_CHECK(std::all_of(head.method.begin(), head.method.end(), is_token_char));
    FUZZ_CHECK(!head.path.empty() && head.path.front() == '/');
    FUZZ_CHECK(head.path.find('?') == std::string::npos);
    FUZZ_CHECK(no_controls(head.path, false));
    FUZZ_CHECK(head.minor_version >= 0 && head.minor_version <= 9);
    FUZZ_CHECK(head.has_authorization || head.authorization.empty());
    FUZZ_CHECK(no_controls(head.authorization, true));
    FUZZ_CHECK(head.authorization.empty() ||
               (head.authorization.front() != ' ' && head.authorization.back() != ' '));
    FUZZ_CHECK(head.authorization.size() <= head.head_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    if (size == 0) {
        return 0;
    }
    // 64 bytes to 16 KiB (the server's limit) in steps of 64.
    const std::size_t max_head = (static_cast<std::size_t>(data[0]) + 1) * 64;
    const std::string_view buffer = cw_fuzz::as_text(data + 1, size - 1);

    const auto result = cw::parse_http_request_head(buffer, max_head);
    if (const auto* error = std::get_if<cw::HttpParseError>(&result)) {
        FUZZ_CHECK(error->status == 400 || error->status == 414 || error->status == 431 || error->status == 505);
        FUZZ_CHECK(!error->reason.empty());
        return 0;
    }
    if (std::holds_alternative<cw::HttpNeedMore>(result)) {
        FUZZ_CHECK(buffer.size() <= max_head);
        return 0;
    }
    const auto& head = std::get<cw::HttpRequestHead>(result);
    check_head(head, buffer, max_head);

    // Only the head decides: the head alone, or the head and other bytes, parse the same.
    const auto alone = cw::parse_http_request_head(buffer.substr(0, head.head_size), max_head);
    const auto* same = std::get_if<cw::HttpRequestHead>(&alone);
    FUZZ_CHECK(same != nullptr);
    FUZZ_CHECK(same->method == head.method && same->path == head.path &&
               same->authorization == head.authorization && same->keep_alive == head.keep_alive &&
               same->has_body == head.has_body && same->head_size == head.head_size);
    // One byte short of the head is never a complete request.
    const auto shorter = cw::parse_http_request_head(buffer.substr(0, head.head_size - 1), max_head);
    FUZZ_CHECK(!std::holds_alternative<cw::HttpRequestHead>(shorter) ||
               std::get<cw::HttpRequestHead>(shorter).head_size < head.head_size);
    return 0;
}

#include "common/http_request.hpp"

#include <algorithm>
#include <charconv>

namespace cw {

namespace {

constexpr std::size_t k_max_target = 8192;
constexpr std::size_t k_max_headers = 100;

bool is_token_char(char c)
{
    // RFC 9110 tchar
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
           });
}

std::string_view trim(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

// A header value may hold visible characters, spaces and tabs only.
bool valid_value(std::string_view value)
{
    return std::all_of(value.begin(), value.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte == '\t' || (byte >= 0x20 && byte != 0x7F);
    });
}

// Splits off the next line (LF or CRLF terminated); `line_end` is where the
// next line starts.
std::string_view next_line(std::string_view head, std::size_t& position)
{
    const std::size_t newline = head.find('\n', position);
    std::string_view line = head.substr(position, newline - position);
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    position = newline + 1;
    return line;
}

HttpParseResult parse_request_line(std::string_view line, HttpRequestHead& request)
{
    const auto first_space = line.find(' ');
    const auto last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space || first_space == 0) {
        return HttpParseError{400, "malformed request line"};
    }
    const std::string_view method = line.substr(0, first_space);
    const std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
    const std::string_view version = line.substr(last_space + 1);
    if (!std::all_of(method.begin(), method.end(), is_token_char)) {
        return HttpParseError{400, "malformed method"};
    }
    if (target.size() > k_max_target) {
        return HttpParseError{414, "request target too long"};
    }
    if (target.empty() || target.front() != '/' ||
        !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c != 0x7F; })) {
        return HttpParseError{400, "malformed request target"};
    }
    if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9') {
        return HttpParseError{505, "only HTTP/1.x is supported"};
    }
    request.method = method;
    request.path = target.substr(0, target.find('?'));
    request.minor_version = version[7] - '0';
    request.keep_alive = request.minor_version >= 1;
    return request;
}

}  // namespace

HttpParseResult parse_http_request_head(std::string_view buffer, std::size_t max_head)
{
    // Tolerate the empty lines RFC 9112 allows before a request line.
    std::size_t start = 0;
    while (start < buffer.size() && (buffer[start] == '\r' || buffer[start] == '\n')) {
        ++start;
    }
    std::size_t end = buffer.find("\n\r\n", start);
    std::size_t terminator = 3;
    if (const std::size_t bare = buffer.find("\n\n", start); bare != std::string_view::npos && bare < end) {
        end = bare;
        terminator = 2;
    }
    if (end == std::string_view::npos) {
        if (buffer.size() > max_head) {
            return HttpParseError{431, "request head too large"};
        }
        return HttpNeedMore{};
    }
    const std::size_t head_size = end + terminator;
    if (head_size > max_head) {
        return HttpParseError{431, "request head too large"};
    }
    const std::string_view head = buffer.substr(0, end + 1);

    HttpRequestHead request;
    std::size_t position = start;
    auto line_result = parse_request_line(next_line(head, position), request);
    if (std::holds_alternative<HttpParseError>(line_result)) {
        return line_result;
    }
    bool has_length = false;
    std::size_t headers = 0;
    while (position < head.size()) {
        const std::string_view line = next_line(head, position);
        if (line.empty()) {
            break;
        }
        if (++headers > k_max_headers) {
            return HttpParseError{431, "too many header fields"};
        }
        if (line.front() == ' ' || line.front() == '\t') {
            return HttpParseError{400, "folded header lines are not accepted"};
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return HttpParseError{400, "malformed header line"};
        }
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (!std::all_of(name.begin(), name.end(), is_token_char) || !valid_value(value)) {
            return HttpParseError{400, "malformed header field"};
        }
        if (iequals(name, "authorization")) {
            if (request.has_authorization) {
                return HttpParseError{400, "more than one Authorization header"};
            }
            request.has_authorization = true;
            request.authorization = value;
        } else if (iequals(name, "connection")) {
            // A comma-separated list of options; only close/keep-alive matter.
            std::size_t from = 0;
            while (from <= value.size()) {
                const std::size_t comma = std::min(value.find(',', from), value.size());
                const std::string_view option = trim(value.substr(from, comma - from));
                if (iequals(option, "close")) {
                    request.keep_alive = false;
                } else if (iequals(option, "keep-alive") && request.minor_version == 0) {
                    request.keep_alive = true;
                }
                from = comma + 1;
            }
        } else if (iequals(name, "content-length")) {
            std::size_t length = 0;
            const auto [ptr, error] = std::from_chars(value.data(), value.data() + value.size(), length);
            if (has_length || value.empty() || error != std::errc{} || ptr != value.data() + value.size()) {
                return HttpParseError{400, "invalid Content-Length"};
            }
            has_length = true;
            request.content_length = length;
            request.has_body = request.has_body || length > 0;
        } else if (iequals(name, "transfer-encoding")) {
            request.has_body = true;
            request.transfer_encoded = true;
        } else if (iequals(name, "content-encoding")) {
            request.content_encoded = request.content_encoded || !iequals(value, "identity");
        } else if (iequals(name, "host")) {
            if (request.host) {
                return HttpParseError{400, "more than one Host header"};
            }
            request.host = std::string{value};
        } else if (iequals(name, "forwarded") || iequals(name, "via")) {
            request.relayed = true;
        } else if (name.size() > 2 && (name[0] == 'x' || name[0] == 'X') && name[1] == '-') {
            std::string lower{name};
            std::transform(lower.begin(), lower.end(), lower.begin(),
                           [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
            request.x_headers.emplace_back(std::move(lower), std::string{value});
        }
    }
    request.head_size = head_size;
    return request;
}

}  // namespace cw

#include "common/jwt_claims.hpp"

#include <nlohmann/json.hpp>

namespace cw {

namespace {

int base64url_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

std::optional<SystemTime> numeric_date(const nlohmann::json& claims, const char* name)
{
    const auto it = claims.find(name);
    if (it == claims.end() || !it->is_number()) {
        return std::nullopt;
    }
    // Up to 2200-01-01: system_clock's nanoseconds overflow after 2262.
    constexpr double k_last_second = 7'258'118'400;
    const double seconds = it->get<double>();
    if (!(seconds >= 0 && seconds <= k_last_second)) {  // also refuses NaN
        return std::nullopt;
    }
    return SystemTime{std::chrono::seconds{static_cast<long long>(seconds)}};
}

std::string string_claim(const nlohmann::json& claims, const char* name)
{
    const auto it = claims.find(name);
    return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

std::optional<std::string> base64url_decode(std::string_view text)
{
    while (!text.empty() && text.back() == '=') {
        text.remove_suffix(1);
    }
    if (text.size() % 4 == 1) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(text.size() * 3 / 4);
    unsigned buffer = 0;
    int bits = 0;
    for (const char c : text) {
        const int value = base64url_value(c);
        if (value < 0) {
            return std::nullopt;
        }
        buffer = (buffer << 6) | static_cast<unsigned>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xFFU));
        }
    }
    return out;
}

std::variant<JwtClaims, JwtError> decode_jwt_claims(std::string_view token)
{
    const auto first_dot = token.find('.');
    const auto second_dot = first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos) {
        return JwtError{"not a JWT (expected three dot-separated parts)"};
    }
    const auto payload = base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
    if (!payload) {
        return JwtError{"not a JWT (payload is not base64url)"};
    }
    const auto claims = nlohmann::json::parse(*payload, nullptr, false);
    if (!claims.is_object()) {
        return JwtError{"not a JWT (payload is not a JSON object)"};
    }
    JwtClaims result;
    result.issuer = string_claim(claims, "iss");
    result.subject = string_claim(claims, "sub");
    if (const auto aud = claims.find("aud"); aud != claims.end()) {
        if (aud->is_string()) {
            result.audience.push_back(aud->get<std::string>());
        } else if (aud->is_array()) {
            for (const auto& entry : *aud) {
                if (entry.is_string()) {
                    result.audience.push_back(entry.get<std::string>());
                }
            }
        }
    }
    result.issued_at = numeric_date(claims, "iat");
    result.not_before = numeric_date(claims, "nbf");
    result.expires_at = numeric_date(claims, "exp");
    return result;
}

}  // namespace cw

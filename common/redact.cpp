#include "common/redact.hpp"

#include <array>
#include <cstdio>


#include "common/digest.hpp"

namespace cw {

namespace {

bool is_keyish(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '=' || c == '-' || c == '_' || c == '.';
}

// Runs this long of base64/base64url characters (dots included, so a JWT is
// one run) are treated as secrets. English words and ids in error messages
// are shorter; secret keys (40), access key ids (20) and JWTs are not.
constexpr std::size_t k_secret_run = 20;

}  // namespace

std::string mask_access_key_id(std::string_view access_key_id)
{
    if (access_key_id.size() <= 12) {
        return "…" + std::string{access_key_id.substr(access_key_id.size() >= 2 ? access_key_id.size() - 2 : 0)};
    }
    return std::string{access_key_id.substr(0, 4)} + "…" + std::string{access_key_id.substr(access_key_id.size() - 4)};
}

std::string fingerprint(std::string_view secret)
{
    const Sha256 digest = sha256(secret);
    std::string out = "sha256:";
    for (std::size_t i = 0; i < 6; ++i) {
        std::array<char, 3> hex{};
        std::snprintf(hex.data(), hex.size(), "%02x", digest[i]);
        out += hex.data();
    }
    return out;
}

std::string sanitize_excerpt(std::string_view text, std::size_t max_length)
{
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size() && out.size() < max_length) {
        if (is_keyish(text[pos])) {
            std::size_t end = pos;
            while (end < text.size() && is_keyish(text[end])) {
                ++end;
            }
            if (end - pos >= k_secret_run) {
                out += "<redacted>";
            } else {
                out.append(text.substr(pos, end - pos));
            }
            pos = end;
            continue;
        }
        const auto c = static_cast<unsigned char>(text[pos]);
        // Non-ASCII bytes become '?': an excerpt cut mid-character must still
        // be valid UTF-8 for the JSON log format and the status page.
        out.push_back(c >= 0x80 ? '?' : (c < 0x20 || c == 0x7F ? ' ' : text[pos]));
        ++pos;
    }
    if (out.size() > max_length) {
        out.resize(max_length);
    }
    if (pos < text.size()) {
        out += "…";
    }
    return out;
}

}  // namespace cw

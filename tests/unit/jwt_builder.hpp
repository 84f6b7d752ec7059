// Unsigned JWT-shaped strings for tests of code that only reads claims.
#pragma once

#include <string>

namespace cw::test {

inline std::string base64url(const std::string& text)
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

// header.payload.signature, with a fixed RS256 header and a dummy signature.
inline std::string jwt_with(const std::string& payload_json)
{
    return base64url(R"({"alg":"RS256","typ":"JWT"})") + "." + base64url(payload_json) + ".c2lnbmF0dXJl";
}

}  // namespace cw::test

// Shared helpers for the libFuzzer targets in this directory.
//
// A failed invariant prints what was violated and aborts, which libFuzzer
// reports as a crash and saves the input as crash-<sha1>.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(condition)                                                                     \
    do {                                                                                          \
        if (!(condition)) {                                                                       \
            std::fprintf(stderr, "invariant violated at %s:%d: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                         \
        }                                                                                         \
    } while (false)

namespace cw_fuzz {

// The input as text, and the first byte peeled off as a selector when asked.
inline std::string_view as_text(const unsigned char* data, std::size_t size)
{
    return {reinterpret_cast<const char*>(data), size};
}

// Base64url without padding (what JWTs use), to build structured inputs.
inline std::string base64url_encode(std::string_view bytes)
{
    static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (const char c : bytes) {
        buffer = (buffer << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(k_alphabet[(buffer >> bits) & 0x3FU]);
        }
    }
    if (bits > 0) {
        out.push_back(k_alphabet[(buffer << (6 - bits)) & 0x3FU]);
    }
    return out;
}

}  // namespace cw_fuzz

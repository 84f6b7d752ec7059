// SHA-256 and a constant-time comparison of digests.
//
// Caller tokens are compared as digests: equal-length digests compared in
// constant time leak neither the content nor the length of the secret.
#pragma once

#include <array>
#include <string_view>

namespace cw {

using Sha256 = std::array<unsigned char, 32>;

Sha256 sha256(std::string_view data);

bool constant_time_equal(const Sha256& left, const Sha256& right);

}  // namespace cw

// Keeping secrets out of every output.
//
// Tokens, secret keys and full access key ids must never reach a log line, a
// status page, a metric or an error body. These helpers produce what may be
// shown instead; everything user-visible goes through them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cw {

// `CWAK…4567`: enough to match against a console or CloudTrail-like log,
// not enough to use. Ids of 12 characters or fewer show only the last 2.
std::string mask_access_key_id(std::string_view access_key_id);

// `sha256:1f2e3d4c5b6a`: tells two tokens apart (did it rotate?) without
// revealing either.
std::string fingerprint(std::string_view secret);

// A short, printable excerpt of an upstream body for logs and status:
// control characters become spaces, anything shaped like a JWT or a long
// key-like run of base64 characters is replaced by `<redacted>`, and the
// result is cut to `max_length` characters.
std::string sanitize_excerpt(std::string_view text, std::size_t max_length = 160);

}  // namespace cw

// Instants on the wire: RFC 3339 from the upstream and to the SDKs, and the
// HTTP-date of `Date` and `Retry-After` headers.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"

namespace cw {

// Accepts `2026-03-14T21:44:43Z`, fractional seconds, `+01:00`/`-05:30`
// offsets, and a lower-case `t`/`z`. Fractions are truncated to milliseconds.
std::optional<SystemTime> parse_rfc3339(std::string_view text);

// `2026-03-14T21:44:43Z`: UTC, `Z`, no fraction (the JS SDK and botocore's
// IMDS parser are strict). Sub-second parts are truncated, which can only make
// an expiry look earlier than it is, never later.
std::string format_rfc3339(SystemTime instant);

// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate).
std::optional<SystemTime> parse_http_date(std::string_view text);

}  // namespace cw

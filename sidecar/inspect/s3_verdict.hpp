// `cwcreds inspect --s3`: which S3 request to make with the served keys, and
// what its answer means. Pure functions of (answer, now), so every verdict is
// unit-tested; s3_request.cpp sends the request and inspect_command.cpp
// fetches the keys and prints.
//
// The request is one GET, not a HEAD: S3 answers a failed HEAD with a status
// and no body, so a 403 could be a policy, an unknown key, a wrong secret or
// a skewed clock, and telling them apart would take a second request. A GET
// of the bucket listing with max-keys=0 needs exactly what HeadBucket needs
// (s3:ListBucket) and a GET of an object's first byte exactly what
// HeadObject needs (s3:GetObject), and either failure carries S3's XML error
// code. So one signed request, as the contract says, names the cause.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/clock.hpp"

namespace cw {

struct S3Target {
    std::string bucket;
    std::string key;  // empty: the bucket itself
};

// `s3://BUCKET` or `s3://BUCKET/KEY`; otherwise the reason it is not one.
std::variant<S3Target, std::string> parse_s3_uri(std::string_view uri);

// Virtual-hosted (BUCKET.endpoint, what CoreWeave AI Object Storage requires)
// or path style (endpoint/BUCKET, for S3-compatible stand-ins and tests).
enum class S3Addressing { virtual_hosted, path };

// The URL of the one request: `?max-keys=0` on the bucket, or the object with
// its key percent-encoded per segment as Signature Version 4 expects;
// nullopt when `endpoint` is not an http(s) URL.
std::optional<std::string> s3_request_url(std::string_view endpoint, const S3Target& target, S3Addressing addressing);

// What came back, as far as a verdict needs it. Never the body itself: S3's
// SignatureDoesNotMatch body repeats the full access key id.
struct S3Answer {
    long http_status = 0;                   // 0: no HTTP answer (transport_error says why)
    std::string transport_error;            // curl's text for DNS, connect, TLS, timeout failures
    std::string error_code;                 // the XML <Code>, or an x-amz-error-code header; sanitised
    std::optional<SystemTime> server_date;  // the `Date` header
};

// The XML error body's <Code>, if it is a plausible S3 error code.
std::string s3_error_code(std::string_view body);

enum class S3Cause { ok, policy, key, signature, clock, not_found, endpoint, other };

// "ok", "policy", "key", "signature", "clock", "not-found", "endpoint", "other"
std::string_view cause_name(S3Cause cause);

struct S3Verdict {
    S3Cause cause = S3Cause::other;
    std::string detail;  // names the cause and what to do; never a secret
};

struct S3Context {
    S3Target target;
    std::string endpoint;
    std::string region;
    std::string masked_key_id;  // as mask_access_key_id shows it
    std::string principal;      // role/<iss>:<sub> when the token is readable, for the policy advice
};

// S3 refuses a signature made more than this far from its own clock.
inline constexpr Millis k_s3_max_skew{15 * 60 * 1000};

S3Verdict classify_s3_answer(const S3Answer& answer, const S3Context& context, SystemTime now);

}  // namespace cw

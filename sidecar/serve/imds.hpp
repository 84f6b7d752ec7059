// EC2 instance metadata, IMDSv2 only, for clients that know nothing else
// (Ruby aws-sdk-core, rclone and other Go tools, through
// AWS_EC2_METADATA_SERVICE_ENDPOINT).
//
// A caller first PUTs /latest/api/token with a TTL and gets a random session
// token; every other /latest/ request must carry it. That is the only
// protection IMDSv2 has: it stops a server-side request forgery that can
// only make GETs, or that goes through a proxy adding X-Forwarded-For (which
// is refused, as EC2 does). It is not authentication: anything in the pod's
// network namespace that can send a PUT gets credentials, which is why IMDS
// is opt-in (--imds).
//
// Session tokens are secrets, never logged, and hold nothing: a token is its
// own expiry (monotonic milliseconds) and a random nonce, sealed with an HMAC
// under a key drawn when the process starts, like EC2's own stateless
// tokens. No store means no flood of PUTs can push out another caller's
// session, and memory does not grow with the sessions issued; a restart
// invalidates them all, and SDKs then ask for a new one.
//
// The answers are a pure function of the request, the held sessions, what is
// being served and `now`, so tests drive them without sockets or sleeps.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/event_http_server.hpp"
#include "common/http_request.hpp"
#include "sidecar/exchange/refresher.hpp"

namespace cw {

inline constexpr std::chrono::seconds k_imds_max_ttl{21600};

class ImdsSessions {
public:
    // `random_bytes` fills a buffer with secure random bytes (default:
    // OpenSSL's RAND_bytes); the key is drawn from it here.
    explicit ImdsSessions(std::function<void(unsigned char*, std::size_t)> random_bytes = {});

    // A new session token (64 hex characters) valid for `ttl`.
    std::string issue(std::chrono::seconds ttl, SteadyTime now);

    // Whether `token` was issued by this process and has not expired.
    [[nodiscard]] bool valid(std::string_view token, SteadyTime now) const;

private:
    std::function<void(unsigned char*, std::size_t)> m_random;
    std::array<unsigned char, 32> m_key{};
};

// What the answers read besides the request.
struct ImdsView {
    std::shared_ptr<const Served> served;  // nullptr when nothing may be served now
    std::string role;                      // the one role name listed
    std::string region;                    // empty: unknown (placement paths 404)
    std::string unavailable;               // why nothing is served, for the 503 message
};

struct ImdsAnswer {
    HttpResponse response;
    bool credentials_served = false;
    bool session_issued = false;
};

// Whether a path belongs to instance metadata (`/latest` and below).
bool is_imds_path(std::string_view path);

ImdsAnswer imds_answer(const HttpRequestHead& request, ImdsSessions& sessions, const ImdsView& view, SteadyTime now);

// The role name shown for a token subject: the service account's name for
// `system:serviceaccount:<namespace>:<name>`, else "cwcreds".
std::string imds_role_name(std::string_view subject);

// The EC2 credentials document for what /v1/credentials serves. An empty
// session token becomes `"Token": null`; see imds.cpp for why.
std::string imds_credentials_json(const Served& served);

}  // namespace cw

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
// Session tokens are secrets: only their SHA-256 is held, never logged, and
// at most a fixed number at once (the soonest-expiring one is dropped to make
// room, so a flood of PUTs costs bounded memory). Times are monotonic.
//
// The answers are a pure function of the request, the held sessions, what is
// being served and `now`, so tests drive them without sockets or sleeps.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/digest.hpp"
#include "common/event_http_server.hpp"
#include "common/http_request.hpp"
#include "sidecar/exchange/refresher.hpp"

namespace cw {

inline constexpr std::chrono::seconds k_imds_max_ttl{21600};
inline constexpr std::size_t k_imds_default_capacity = 1024;

class ImdsSessions {
public:
    // `random_bytes` fills a buffer with secure random bytes (default: OpenSSL's RAND_bytes).
    explicit ImdsSessions(std::size_t capacity = k_imds_default_capacity,
                          std::function<void(unsigned char*, std::size_t)> random_bytes = {});

    // A new session token (64 hex characters, 32 random bytes) valid for `ttl`.
    std::string issue(std::chrono::seconds ttl, SteadyTime now);

    [[nodiscard]] bool valid(std::string_view token, SteadyTime now) const;

    // Sessions not yet expired.
    [[nodiscard]] std::size_t held(SteadyTime now) const;

private:
    const std::size_t m_capacity;
    std::function<void(unsigned char*, std::size_t)> m_random;
    mutable std::mutex m_mutex;
    // Keyed by the token's digest; a lookup compares digests of what the
    // caller sent, which tells it nothing about any held token.
    std::map<Sha256, SteadyTime> m_expiry;
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

// S3 credentials as the sidecar holds them, and the JSON shapes it gives out.
//
// A key's life is measured, not read off the node's wall clock: its lifetime
// is `Expiration − Date`, both on the upstream's clock, and its end on this
// node is counted from the moment the request was sent, on the monotonic
// clock. A node clock minutes off, or one that steps while the key is held,
// changes neither. The `Expiration` handed to SDKs is that end restated in
// the node's wall clock at the moment of answering, because SDKs compare it
// with the wall clock of the same node.
#pragma once

#include <optional>
#include <string>

#include "common/clock.hpp"

namespace cw {

// `Date` has whole seconds: the upstream's clock read up to this much later.
inline constexpr Millis k_date_resolution{1000};

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;                  // CoreWeave's is usually empty
    SystemTime expiration;                      // the upstream's instant, as it said it
    SystemTime obtained_at;                     // when the answer arrived, on our wall clock (for people)
    std::optional<SystemTime> upstream_date{};  // the answer's `Date` header, on the upstream's clock
    SteadyTime sent{};                          // when the request left, on our monotonic clock

    // The lifetime on the upstream's own clock. Without a `Date` header,
    // ours at arrival stands in for it.
    [[nodiscard]] Millis lifetime() const;

    // The key's end on this node, on the monotonic clock. The upstream read
    // its clock after the request left, and up to a second after its `Date`
    // says, so counting from `sent` and taking that second off never ends a
    // key later than it really ends.
    [[nodiscard]] SteadyTime end() const;

    // How far our clock ran ahead of the upstream's when the answer arrived
    // (negative: behind). `Date` has whole seconds, so this is exact to
    // about a second. Reported only: no deadline depends on it.
    [[nodiscard]] std::optional<Millis> clock_skew() const;
};

// `{"AccessKeyId","SecretAccessKey","Token","Expiration"}`: the AWS
// container-credentials shape, with `expiration` as the `Expiration` to state
// (the key's end on the caller's clock). `Token` is always present (botocore
// and the JS SDK fail without it), `Expiration` is RFC 3339 UTC with `Z`.
std::string container_credentials_json(const Credentials& credentials, SystemTime expiration);

// `{"Version":1,"AccessKeyId","SecretAccessKey","SessionToken"?,"Expiration"}`
// for `credential_process` in ~/.aws/config.
std::string credential_process_json(const Credentials& credentials, SystemTime expiration);

}  // namespace cw

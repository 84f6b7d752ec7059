// When to renew credentials and until when to serve them: pure functions of
// (credentials, settings, now), so the policy is tested on a hand-moved clock.
//
// The lifetime is measured on the upstream's clock (Credentials::lifetime),
// and the renewal instant counted from arrival on ours, so a skewed node
// clock shifts nothing. Renewal happens once `refresh_fraction` of the
// lifetime has passed, minus a
// random share (`refresh_jitter`) so a fleet does not renew in lockstep. With
// the default 0.25, every credential served while the upstream is healthy has
// at least 75% of its lifetime left: for 15-minute keys over 11 minutes, so
// botocore never enters its 10-minute blocking window; for 1-hour keys over
// 45 minutes, so no SDK re-fetches early.
#pragma once

#include "sidecar/credentials.hpp"
#include "sidecar/settings.hpp"

namespace cw {

// `unit_random` in [0, 1) picks the jitter.
SystemTime refresh_due(const Credentials& credentials, const RefreshSettings& settings, double unit_random);

// The last instant the credentials may be handed out: the effective expiry
// (the earlier of the upstream's and our clock's reading) minus the margin,
// where the margin is at most 10% of the lifetime (so short test lifetimes
// still work).
SystemTime serve_until(const Credentials& credentials, const RefreshSettings& settings);

bool servable(const Credentials& credentials, const RefreshSettings& settings, SystemTime now);

}  // namespace cw

// When to renew credentials and until when to serve them: pure functions of
// (credentials, settings, now), so the policy is tested on a hand-moved clock.
//
// Every deadline is on the monotonic clock, counted from the answer's arrival
// over the lifetime measured on the upstream's clock (Credentials::end()), so
// a node clock that is minutes off, or steps, moves none of them. Renewal
// happens once `refresh_fraction` of the lifetime has passed, minus a random
// share (`refresh_jitter`) so a fleet does not renew in lockstep. With the
// default 0.25, every credential served while the upstream is healthy has at
// least 75% of its lifetime left: for 15-minute keys over 11 minutes, so
// botocore never enters its 10-minute blocking window; for 1-hour keys over
// 45 minutes, so no SDK re-fetches early.
#pragma once

#include "sidecar/exchange/credentials.hpp"
#include "sidecar/exchange/exchange_settings.hpp"

namespace cw {

// The margin kept before the end: `expiry_margin`, at most 10% of the
// lifetime (so short test lifetimes still work).
Millis expiry_margin(const Credentials& credentials, const RefreshSettings& settings);

// `unit_random` in [0, 1) picks the jitter. Never later than two margins
// before the end, so a renewal always has one margin of serving left to
// land in, whatever the fraction.
SteadyTime refresh_due(const Credentials& credentials, const RefreshSettings& settings, double unit_random);

// The last instant the credentials may be handed out: their end minus the margin.
SteadyTime serve_until(const Credentials& credentials, const RefreshSettings& settings);

bool servable(const Credentials& credentials, const RefreshSettings& settings, SteadyTime now);

}  // namespace cw

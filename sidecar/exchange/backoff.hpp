// How long to wait after a failed exchange.
//
// Exponential from `retry_initial`, capped at `retry_max`, with "equal
// jitter" (half fixed, half random) so retries neither synchronise across a
// fleet nor collapse to zero. A rejected token waits the cap at once: asking
// again with the same token will not help, a rotation will (and cuts the wait
// short). After a `Retry-After`, the backoff counts from the instant it
// names: callers refused in the same second all hear the same instant, and
// honouring it only as a lower bound brought them back together (measured in
// bench/fleet: 12% fewer refused requests for a fleet starting against a
// rate limit).
#pragma once

#include <optional>

#include "sidecar/exchange/exchange_client.hpp"
#include "sidecar/exchange/exchange_settings.hpp"

namespace cw {

// `failures` counts consecutive failures, 1 for the first.
Millis backoff_delay(int failures, ExchangeOutcome outcome, std::optional<Millis> retry_after,
                     const RefreshSettings& settings, double unit_random);

}  // namespace cw

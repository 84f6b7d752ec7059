// How long to wait after a failed exchange.
//
// Exponential from `retry_initial`, capped at `retry_max`, with "equal
// jitter" (half fixed, half random) so retries neither synchronise across a
// fleet nor collapse to zero. A rejected token waits the cap at once: asking
// again with the same token will not help, a rotation will (and cuts the wait
// short). `Retry-After` is honoured as a lower bound.
#pragma once

#include <optional>

#include "sidecar/exchange_client.hpp"
#include "sidecar/settings.hpp"

namespace cw {

// `failures` counts consecutive failures, 1 for the first.
Millis backoff_delay(int failures, ExchangeOutcome outcome, std::optional<Millis> retry_after,
                     const RefreshSettings& settings, double unit_random);

}  // namespace cw

// A model of CoreWeave's temporary-credentials endpoint for the fleet
// simulation: every pod's Refresher calls this one Exchanger on a shared fake
// clock.
//
// A request is counted at the instant it is sent. The clock does not move
// while a request is in flight (the simulation is single-threaded), so
// latency is modelled the way the real exchange client measures it: the
// answer's credentials are timed from `sent` (the request time), and the
// simulation counts a pod as served from `sent + latency`. Failures answer at
// once: a 503 during an outage, a 429 with `Retry-After` above the rate limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "sidecar/exchange/exchange_client.hpp"

namespace cw::fleet {

struct Window {
    Millis start{0};  // from the start of the simulation
    Millis end{0};
};

struct UpstreamModel {
    Millis lifetime{900'000};  // of the keys it hands out
    Millis latency{50};
    std::vector<Window> outages;  // answers 503 inside these
    // Above this many accepted requests in one second, answers 429.
    std::optional<int> rate_limit;
    Millis retry_after{5000};
};

class ModelUpstream final : public Exchanger {
public:
    ModelUpstream(const Clock& clock, UpstreamModel model, SteadyTime origin, Millis duration);

    ExchangeResult exchange(const std::string& token) override;
    void cancel() override {}

    // Requests sent in each second of the simulation, whatever their answer.
    [[nodiscard]] const std::vector<std::uint32_t>& requests_per_second() const { return m_requests; }
    [[nodiscard]] std::uint64_t requests() const { return m_total; }
    [[nodiscard]] std::uint64_t refused() const { return m_refused; }
    [[nodiscard]] const UpstreamModel& model() const { return m_model; }

private:
    const Clock& m_clock;
    const UpstreamModel m_model;
    const SteadyTime m_origin;
    std::vector<std::uint32_t> m_requests;
    std::vector<std::uint32_t> m_accepted;
    std::uint64_t m_total = 0;
    std::uint64_t m_refused = 0;
    std::uint64_t m_issued = 0;
};

}  // namespace cw::fleet

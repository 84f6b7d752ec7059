#include "bench/fleet/upstream_model.hpp"

#include <algorithm>

namespace cw::fleet {

ModelUpstream::ModelUpstream(const Clock& clock, UpstreamModel model, SteadyTime origin, Millis duration)
    : m_clock(clock),
      m_model(std::move(model)),
      m_origin(origin),
      m_requests(static_cast<std::size_t>(duration.count() / 1000 + 1), 0),
      m_accepted(m_requests.size(), 0)
{
}

ExchangeResult ModelUpstream::exchange(const std::string& /*token*/)
{
    const SteadyTime sent = m_clock.steady_now();
    const auto offset = std::chrono::duration_cast<Millis>(sent - m_origin);
    const auto second =
        std::min(static_cast<std::size_t>(std::max<Millis::rep>(offset.count() / 1000, 0)), m_requests.size() - 1);
    ++m_requests[second];
    ++m_total;

    ExchangeResult result;
    result.latency = m_model.latency;
    const bool in_outage = std::any_of(m_model.outages.begin(), m_model.outages.end(),
                                       [&](const Window& w) { return offset >= w.start && offset < w.end; });
    if (in_outage) {
        ++m_refused;
        result.outcome = ExchangeOutcome::retryable;
        result.http_status = 503;
        result.detail = "HTTP 503";
        return result;
    }
    if (m_model.rate_limit && m_accepted[second] >= static_cast<std::uint32_t>(*m_model.rate_limit)) {
        ++m_refused;
        result.outcome = ExchangeOutcome::retryable;
        result.http_status = 429;
        result.retry_after = m_model.retry_after;
        result.detail = "HTTP 429";
        return result;
    }
    ++m_accepted[second];
    ++m_issued;
    const SystemTime wall = m_clock.now();
    result.outcome = ExchangeOutcome::ok;
    result.http_status = 200;
    result.credentials = Credentials{
        "CWSIM" + std::to_string(m_issued), "secret", "", wall + m_model.lifetime, wall, std::nullopt, sent};
    return result;
}

}  // namespace cw::fleet

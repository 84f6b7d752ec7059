#include "sidecar/exchange/refresher.hpp"

#include <random>

#include "common/duration.hpp"
#include "common/logging.hpp"
#include "common/redact.hpp"
#include "sidecar/exchange/backoff.hpp"
#include "sidecar/exchange/refresh_policy.hpp"

namespace cw {

namespace {

// The loop wakes at least this often: the heartbeat stays fresh, and a
// wall-clock jump is noticed within this long.
constexpr Millis k_max_sleep{5000};

std::function<double()> default_random()
{
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    return [engine] { return std::uniform_real_distribution<double>{0.0, 1.0}(*engine); };
}

std::string seconds_text(Millis duration)
{
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(duration).count()) + "s";
}

// Whole seconds, as the log states them.
std::chrono::seconds whole_seconds(Millis duration)
{
    return std::chrono::duration_cast<std::chrono::seconds>(duration);
}

Millis until(SteadyTime later, SteadyTime now)
{
    return std::chrono::duration_cast<Millis>(later - now);
}

// A wall clock that moved this far against the monotonic one since a body
// was rendered has stepped (or slewed): the body's Expiration would be off
// by as much. NTP slews at most 0.5 ms/s, so this re-renders every few
// minutes at most; a step re-renders on the next answer.
constexpr Millis k_wall_step{100};

}  // namespace

Millis stall_allowance(Millis exchange_timeout)
{
    constexpr Millis k_base{30'000};
    return k_base + exchange_timeout;
}

Refresher::Refresher(Exchanger& exchanger, TokenSource& tokens, RefreshSettings settings, RefreshObserver& observer,
                     const Clock& clock, std::function<double()> unit_random)
    : m_exchanger(exchanger),
      m_tokens(tokens),
      m_settings(settings),
      m_observer(observer),
      m_clock(clock),
      m_random(unit_random ? std::move(unit_random) : default_random()),
      m_heartbeat(std::chrono::steady_clock::now())
{
}

std::shared_ptr<const Served> Refresher::render(Credentials credentials) const
{
    auto served = std::make_shared<Served>();
    const SystemTime wall = m_clock.now();
    const SteadyTime steady = m_clock.steady_now();
    served->body = container_credentials_json(credentials, on_wall_clock(credentials.end(), wall, steady));
    served->serve_until = serve_until(credentials, m_settings);
    served->wall_offset = wall_offset(wall, steady);
    served->credentials = std::move(credentials);
    return served;
}

SteadyTime Refresher::step()
{
    const SteadyTime started = m_clock.steady_now();
    int attempt = 0;
    {
        const std::lock_guard lock{m_mutex};
        // Renewals are scheduled before serving ends (refresh_due), so what
        // is held never runs out while the upstream answers; after a failure
        // the backoff decides, so an outage is not hammered.
        if (started < m_next_attempt) {
            warn_if_running_low(started);
            return m_next_attempt;
        }
        attempt = m_failures + 1;
    }

    auto token = m_tokens.current();
    if (!token) {
        m_tokens.reload();
        token = m_tokens.current();
    }
    if (!token) {
        const std::string problem = m_tokens.problem();
        log_event(spdlog::level::warn, "token unavailable",
                  {{"file", m_tokens.file().string()}, {"reason", problem}, {"attempt", attempt}});
        const std::lock_guard lock{m_mutex};
        record_failure(ExchangeKind::token_unavailable, 0, problem, Millis{0}, ExchangeOutcome::retryable, std::nullopt,
                       started);
        m_next_reason = "token file unavailable; retrying with backoff and on the next file event";
        return m_next_attempt;
    }

    log_event(spdlog::level::debug, "exchange start", {{"attempt", attempt}, {"token", fingerprint(*token)}});
    ExchangeResult result = m_exchanger.exchange(*token);
    if (result.outcome == ExchangeOutcome::cancelled) {
        const std::lock_guard lock{m_mutex};
        return m_next_attempt;
    }
    const SteadyTime now = m_clock.steady_now();
    if (result.outcome == ExchangeOutcome::ok && result.credentials &&
        !cw::servable(*result.credentials, m_settings, now)) {
        // Keys too short-lived to outlast the margin (`--duration 1s`): taken
        // as a success, they would be re-requested at once, forever.
        result.outcome = ExchangeOutcome::malformed;
        result.detail = "a key of " + seconds_text(result.credentials->lifetime()) +
                        " ends within the expiry margin: nothing to serve";
        result.credentials.reset();
    }
    if (result.outcome == ExchangeOutcome::ok && result.credentials) {
        const auto served = render(std::move(*result.credentials));
        const Credentials& credentials = served->credentials;
        const SteadyTime next = refresh_due(credentials, m_settings, m_random());
        const auto replaced = servable();
        m_observer.observe_exchange(ExchangeKind::ok, result.latency);
        {
            // Publish first, then log: whoever reads "exchange ok" (an
            // operator, a test) finds the new credentials already served.
            const std::lock_guard lock{m_mutex};
            m_served = served;
            m_next_attempt = next;
            m_next_reason = "scheduled renewal after " +
                            std::to_string(static_cast<int>(m_settings.refresh_fraction * 100)) +
                            "% of the lifetime (minus jitter)";
            m_failures = 0;
            m_last = LastExchange{"ok", result.http_status, "", result.latency, m_clock.now()};
            m_first_attempt_done = true;
            m_changed.notify_all();
        }
        log_event(spdlog::level::info, "exchange ok",
                  {{"expires_in", whole_seconds(until(credentials.end(), now))},
                   {"lifetime", whole_seconds(credentials.lifetime())},
                   {"next_refresh_in", whole_seconds(until(next, now))},
                   {"previous_left",
                    replaced ? std::optional{whole_seconds(until(replaced->credentials.end(), now))} : std::nullopt},
                   {"attempt", attempt},
                   {"latency_ms", result.latency.count()},
                   {"key", mask_access_key_id(credentials.access_key_id)}});
        if (const auto skew = credentials.clock_skew(); skew && (*skew > k_skew_warning || *skew < -k_skew_warning)) {
            log_event(spdlog::level::warn, "clock skew",
                      {{"skew", whole_seconds(*skew)},
                       {"detail",
                        "this node's clock differs from the upstream's Date; keys are timed on the monotonic "
                        "clock and Expiration is stated in this node's clock, but S3 refuses request "
                        "signatures over 15 minutes off (fix NTP on the node)"}});
        }
        return next;
    }

    SteadyTime next_attempt;
    {
        const std::lock_guard lock{m_mutex};
        const ExchangeKind kind = result.outcome == ExchangeOutcome::rejected    ? ExchangeKind::rejected
                                  : result.outcome == ExchangeOutcome::malformed ? ExchangeKind::malformed
                                                                                 : ExchangeKind::retryable;
        record_failure(kind, result.http_status, result.detail, result.latency, result.outcome, result.retry_after,
                       now);
        if (result.outcome == ExchangeOutcome::rejected) {
            m_next_reason = "token rejected (HTTP " + std::to_string(result.http_status) +
                            "); retrying after --retry-max, or at once when the token file changes";
        } else if (result.retry_after) {
            m_next_reason = "backoff after failure " + std::to_string(m_failures) + ", honouring Retry-After";
        } else {
            m_next_reason = "backoff after failure " + std::to_string(m_failures);
        }
        next_attempt = m_next_attempt;
    }
    const auto held = servable();
    log_event(result.outcome == ExchangeOutcome::rejected ? spdlog::level::err : spdlog::level::warn, "exchange failed",
              {{"kind", outcome_name(result.outcome)},
               {"status", result.http_status},
               {"detail", result.detail},
               {"attempt", attempt},
               {"latency_ms", result.latency.count()},
               {"retry_in", until(next_attempt, now)},
               {"serving", held ? "cached, expires_in=" + seconds_text(until(held->credentials.end(), now))
                                : std::string{"nothing"}}});
    // The token may have rotated under us (or been replaced by hand): a
    // changed file calls token_changed(), which retries at once. A rotation
    // the watcher already saw while this exchange was in flight must win over
    // the backoff just recorded, or it would wait for --retry-max.
    m_tokens.reload();
    const auto current = m_tokens.current();
    const std::lock_guard lock{m_mutex};
    if (current && *current != *token) {
        m_next_attempt = m_clock.steady_now();
        m_next_reason = "token changed during the failed exchange: retrying at once";
    }
    warn_if_running_low(now);
    return m_next_attempt;
}

void Refresher::warn_if_running_low(SteadyTime now)
{
    // Called with m_mutex held. Healthy renewal happens at 25% of the
    // lifetime; reaching 75% used means renewals have been failing for a while.
    if (!m_served || m_warned_low == m_served->credentials.access_key_id) {
        return;
    }
    const Credentials& credentials = m_served->credentials;
    const Millis left = until(credentials.end(), now);
    if (left * 4 >= credentials.lifetime()) {
        return;
    }
    m_warned_low = m_served->credentials.access_key_id;
    log_event(spdlog::level::warn, "credentials running low",
              {{"expires_in", whole_seconds(left)},
               {"lifetime", whole_seconds(credentials.lifetime())},
               {"consecutive_failures", m_failures},
               {"last_error", m_last ? m_last->result + (m_last->detail.empty() ? "" : ": " + m_last->detail)
                                     : std::string{"none"}}});
}

void Refresher::record_failure(ExchangeKind kind, long http_status, const std::string& detail, Millis latency,
                               ExchangeOutcome outcome, std::optional<Millis> retry_after, SteadyTime now)
{
    ++m_failures;
    m_observer.observe_exchange(kind, latency);
    m_last = LastExchange{std::string{exchange_kind_name(kind)}, http_status, detail, latency, m_clock.now()};
    m_next_attempt = now + backoff_delay(m_failures, outcome, retry_after, m_settings, m_random());
    // A backoff never sleeps past the end of what is being served: when the
    // upstream comes back just before the keys run out, an attempt lands
    // while they are still served, not up to --retry-max after (measured in
    // bench/fleet: 30 pod-seconds without keys after a 10-minute outage of
    // 10,000 pods). That last attempt is one --retry-initial before serving
    // ends, so it has that long to land; within it, the backoff alone decides
    // (no spinning). A rejected token and Retry-After keep their own waits.
    if (outcome == ExchangeOutcome::retryable && m_served) {
        const SteadyTime last_attempt = m_served->serve_until - m_settings.retry_initial;
        const SteadyTime earliest = now + retry_after.value_or(Millis{0});
        if (last_attempt > earliest) {
            m_next_attempt = std::min(m_next_attempt, last_attempt);
        }
    }
    m_first_attempt_done = true;
    m_changed.notify_all();
}

void Refresher::run()
{
    for (;;) {
        m_heartbeat = std::chrono::steady_clock::now();
        const bool attempted_before = first_attempt_done();
        const SteadyTime next = step();
        if (m_listener && !attempted_before && first_attempt_done()) {
            m_listener();  // callers parked for the first answer can be answered now
        }
        std::unique_lock lock{m_mutex};
        const Millis wait = std::clamp(until(next, m_clock.steady_now()), Millis{0}, k_max_sleep);
        m_changed.wait_for(lock, wait, [this] { return m_stopping || m_wake; });
        m_wake = false;
        if (m_stopping) {
            return;
        }
    }
}

void Refresher::stop()
{
    {
        const std::lock_guard lock{m_mutex};
        m_stopping = true;
        m_changed.notify_all();
    }
    m_exchanger.cancel();
}

void Refresher::token_changed()
{
    const auto token = m_tokens.current();
    const std::lock_guard lock{m_mutex};
    log_event(spdlog::level::info, m_token_seen ? "token rotated" : "token loaded",
              {{"file", m_tokens.file().string()}, {"token", token ? fingerprint(*token) : std::string{"none"}}});
    if (m_token_seen) {
        m_observer.count_token_change();
    }
    m_token_seen = true;
    if (m_failures > 0 || !m_served) {
        m_next_attempt = m_clock.steady_now();
        m_next_reason = "token file changed after a failure: retrying at once";
    }
    m_wake = true;
    m_changed.notify_all();
}

std::shared_ptr<const Served> Refresher::servable()
{
    std::shared_ptr<const Served> served;
    {
        const std::lock_guard lock{m_mutex};
        served = m_served;
    }
    if (!served || m_clock.steady_now() >= served->serve_until) {
        return nullptr;
    }
    const Millis drift = wall_offset(m_clock.now(), m_clock.steady_now()) - served->wall_offset;
    if (drift < k_wall_step && drift > -k_wall_step) {
        return served;
    }
    // The wall clock stepped: restate the same end in the clock SDKs now
    // read. Rare, so rendering on the request path is fine.
    auto restated = render(served->credentials);
    const std::lock_guard lock{m_mutex};
    if (m_served == served) {
        m_served = restated;
    }
    return restated;
}

std::shared_ptr<const Served> Refresher::wait_for_first(Millis limit)
{
    {
        std::unique_lock lock{m_mutex};
        m_changed.wait_for(lock, limit, [this] { return m_first_attempt_done || m_stopping; });
    }
    return servable();
}

bool Refresher::first_attempt_done() const
{
    const std::lock_guard lock{m_mutex};
    return m_first_attempt_done;
}

RefresherStatus Refresher::status() const
{
    const std::lock_guard lock{m_mutex};
    return RefresherStatus{m_served, m_next_attempt, m_next_reason, m_failures, m_last};
}

}  // namespace cw

// The owner of the current credentials.
//
// One loop thread runs step() whenever something is due, so there is never
// more than one exchange in flight however many callers there are: callers
// only read the last good answer, pre-rendered as JSON, from memory.
// step() is public so tests can drive the policy on a fake clock without
// threads.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "common/clock.hpp"
#include "sidecar/exchange/credentials.hpp"
#include "sidecar/exchange/exchange_client.hpp"
#include "sidecar/exchange/exchange_settings.hpp"
#include "sidecar/exchange/refresh_observer.hpp"
#include "sidecar/exchange/token_source.hpp"

namespace cw {

// An immutable snapshot handed to request threads. `body` states the key's
// end in the wall clock as it stood (`wall_offset`) when it was rendered; a
// wall-clock step since then gets a freshly rendered snapshot.
struct Served {
    Credentials credentials;
    std::string body;  // container-credentials JSON
    SteadyTime serve_until;
    Millis wall_offset{0};
};

struct LastExchange {
    std::string result;  // "ok", "rejected", "retryable", "malformed", "token-unavailable"
    long http_status = 0;
    std::string detail;  // sanitised
    Millis latency{0};
    SystemTime at;
};

struct RefresherStatus {
    std::shared_ptr<const Served> served;  // may be past serve_until
    SteadyTime next_attempt;
    std::string next_reason;  // why the next attempt is due then, for humans
    int consecutive_failures = 0;
    std::optional<LastExchange> last;
};

// Skew beyond this is reported: S3 refuses signatures far enough off.
inline constexpr Millis k_skew_warning{30'000};

// How long the loop may go without a heartbeat before /healthz calls it
// stuck: its heartbeat stops while an exchange runs, so the allowance is
// one whole exchange (`exchange_timeout`) on top of a fixed 30 s for its
// longest sleep and a loaded node. A slow upstream is then never mistaken
// for a stuck sidecar, which kubelet would restart, losing its cached keys.
Millis stall_allowance(Millis exchange_timeout);

class Refresher {
public:
    Refresher(Exchanger& exchanger, TokenSource& tokens, RefreshSettings settings, RefreshObserver& observer,
              const Clock& clock = real_clock(), std::function<double()> unit_random = {});

    // Exchanges if an attempt is due at the clock's now; returns when the next one is due.
    SteadyTime step();

    // The loop: step(), then sleep until due, a token change, or stop().
    void run();
    void stop();

    // TokenSource listener: a new token retries at once after a failure.
    void token_changed();

    // Credentials that may be handed out now, or nullptr. Their body states
    // the end in the wall clock as it reads now.
    [[nodiscard]] std::shared_ptr<const Served> servable();

    // Like servable(), but while the very first attempt is still running,
    // waits for it up to `limit` (real time).
    [[nodiscard]] std::shared_ptr<const Served> wait_for_first(Millis limit);

    [[nodiscard]] RefresherStatus status() const;

    // Whether any attempt has finished (successfully or not) since start.
    [[nodiscard]] bool first_attempt_done() const;

    // Called after every attempt ends; set before run() starts.
    void set_listener(std::function<void()> listener) { m_listener = std::move(listener); }

    [[nodiscard]] std::chrono::steady_clock::time_point heartbeat() const { return m_heartbeat.load(); }

private:
    void record_failure(ExchangeKind kind, long http_status, const std::string& detail, Millis latency,
                        ExchangeOutcome outcome, std::optional<Millis> retry_after, SteadyTime now);
    void warn_if_running_low(SteadyTime now);
    [[nodiscard]] std::shared_ptr<const Served> render(Credentials credentials) const;

    Exchanger& m_exchanger;
    TokenSource& m_tokens;
    const RefreshSettings m_settings;
    RefreshObserver& m_observer;
    const Clock& m_clock;
    std::function<double()> m_random;
    std::function<void()> m_listener;

    mutable std::mutex m_mutex;
    mutable std::condition_variable m_changed;
    std::shared_ptr<const Served> m_served;
    SteadyTime m_next_attempt{};
    int m_failures = 0;
    bool m_first_attempt_done = false;
    bool m_wake = false;
    bool m_token_seen = false;
    bool m_stopping = false;
    std::string m_next_reason = "first exchange";
    std::optional<LastExchange> m_last;
    std::string m_warned_low;  // the access key id already warned about (never logged)
    std::atomic<std::chrono::steady_clock::time_point> m_heartbeat;
};

}  // namespace cw

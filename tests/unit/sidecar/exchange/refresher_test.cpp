#include <doctest/doctest.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <thread>

#include <nlohmann/json.hpp>

#include "fake_clock.hpp"
#include "sidecar/exchange/refresher.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

// Answers exchanges from a script; the default answer is fresh keys of `lifetime`.
class FakeExchanger final : public cw::Exchanger {
public:
    FakeExchanger(const cw::Clock& clock, cw::Millis lifetime) : m_clock(clock), m_lifetime(lifetime) {}

    cw::ExchangeResult exchange(const std::string& token) override
    {
        std::unique_lock lock{m_mutex};
        ++m_calls;
        m_tokens.push_back(token);
        m_cv.notify_all();
        m_cv.wait(lock, [this] { return !m_hold || m_cancelled; });
        if (m_cancelled) {
            cw::ExchangeResult cancelled;
            cancelled.outcome = cw::ExchangeOutcome::cancelled;
            return cancelled;
        }
        if (!m_script.empty()) {
            auto result = m_script.front();
            m_script.pop_front();
            return result;
        }
        const auto upstream_now = m_clock.now() + m_upstream_ahead;
        cw::ExchangeResult result;
        result.outcome = cw::ExchangeOutcome::ok;
        result.http_status = 200;
        result.credentials = cw::Credentials{"CWAKKEY" + std::to_string(m_calls),
                                             "secret",
                                             "",
                                             upstream_now + m_lifetime,
                                             m_clock.now(),
                                             upstream_now,
                                             m_clock.steady_now()};
        return result;
    }

    // The upstream's clock reads this much more than the node's.
    void set_upstream_ahead(cw::Millis ahead)
    {
        const std::lock_guard lock{m_mutex};
        m_upstream_ahead = ahead;
    }

    void cancel() override
    {
        const std::lock_guard lock{m_mutex};
        m_cancelled = true;
        m_cv.notify_all();
    }

    void fail_next(cw::ExchangeOutcome outcome, long status, std::optional<cw::Millis> retry_after = std::nullopt)
    {
        const std::lock_guard lock{m_mutex};
        cw::ExchangeResult result;
        result.outcome = outcome;
        result.http_status = status;
        result.retry_after = retry_after;
        result.detail = "HTTP " + std::to_string(status);
        m_script.push_back(result);
    }

    void clear_script()
    {
        const std::lock_guard lock{m_mutex};
        m_script.clear();
    }

    void hold(bool on)
    {
        const std::lock_guard lock{m_mutex};
        m_hold = on;
        m_cv.notify_all();
    }

    void wait_for_call()
    {
        std::unique_lock lock{m_mutex};
        m_cv.wait(lock, [this] { return m_calls > 0; });
    }

    int calls() const
    {
        const std::lock_guard lock{m_mutex};
        return m_calls;
    }

    std::string last_token() const
    {
        const std::lock_guard lock{m_mutex};
        return m_tokens.empty() ? "" : m_tokens.back();
    }

private:
    const cw::Clock& m_clock;
    const cw::Millis m_lifetime;
    cw::Millis m_upstream_ahead{0};
    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<cw::ExchangeResult> m_script;
    std::vector<std::string> m_tokens;
    int m_calls = 0;
    bool m_hold = false;
    bool m_cancelled = false;
};

// What the refresher reported, by kind.
class RecordingObserver final : public cw::RefreshObserver {
public:
    void observe_exchange(cw::ExchangeKind kind, cw::Millis /*latency*/) override
    {
        ++exchanges[static_cast<std::size_t>(kind)];
    }
    void count_token_change() override { ++token_changes; }

    std::array<int, cw::k_exchange_kind_count> exchanges{};
    int token_changes = 0;
};

// The pieces a refresher needs, with a fixed random draw (0.5).
struct Rig {
    explicit Rig(cw::Millis lifetime = 15min, cw::RefreshSettings settings = {})
        : exchanger(clock, lifetime),
          token_file(dir.write("token", "token-one")),
          tokens(token_file),
          refresher(exchanger, tokens, settings, metrics, clock, [] { return 0.5; })
    {
        tokens.set_listener([this] { refresher.token_changed(); });
        tokens.reload();
    }

    cw::test::TempDir dir;
    cw::test::FakeClock clock;
    RecordingObserver metrics;
    FakeExchanger exchanger;
    std::filesystem::path token_file;
    cw::TokenSource tokens;
    cw::Refresher refresher;
};

// What an SDK sees: the served Expiration against the node's wall clock.
cw::SystemTime served_expiration(const cw::Served& served)
{
    return *cw::parse_rfc3339(nlohmann::json::parse(served.body)["Expiration"].get<std::string>());
}

// The share of the lifetime left, as an SDK on this node computes it.
double left_share(const cw::Served& served, cw::SystemTime now)
{
    return static_cast<double>(std::chrono::duration_cast<cw::Millis>(served_expiration(served) - now).count()) /
           static_cast<double>(served.credentials.lifetime().count());
}

}  // namespace

TEST_SUITE("sidecar::Refresher")
{
    TEST_CASE("over two hours of 15-minute keys, every served key has over 70% of its life left")
    {
        Rig rig{15min};
        int exchanges_seen = 0;
        for (int second = 0; second < 2 * 3600; second += 5) {
            rig.refresher.step();
            const auto served = rig.refresher.servable();
            REQUIRE(served);
            CHECK(left_share(*served, rig.clock.now()) > 0.70);
            exchanges_seen = rig.exchanger.calls();
            rig.clock.advance(5s);
        }
        // About one renewal per 0.24 x 15 min: 2 h / 3.4 min = 35, not one per step.
        CHECK(exchanges_seen >= 30);
        CHECK(exchanges_seen <= 40);
    }

    TEST_CASE("1-hour and 12-hour keys keep over 70% too, with few exchanges")
    {
        for (const cw::Millis lifetime : {cw::Millis{1h}, cw::Millis{12h}}) {
            CAPTURE(lifetime.count());
            Rig rig{lifetime};
            for (int step = 0; step < 1000; ++step) {
                rig.refresher.step();
                const auto served = rig.refresher.servable();
                REQUIRE(served);
                CHECK(left_share(*served, rig.clock.now()) > 0.70);
                rig.clock.advance(lifetime / 200);
            }
            // 5 lifetimes / (0.2375 lifetime per renewal) = 21 renewals.
            CHECK(rig.exchanger.calls() >= 20);
            CHECK(rig.exchanger.calls() <= 23);
        }
    }

    TEST_CASE("nothing is exchanged before it is due")
    {
        Rig rig;
        const auto due = rig.refresher.step();
        CHECK(rig.exchanger.calls() == 1);
        rig.clock.advance_to(due - 1ms);
        CHECK(rig.refresher.step() == due);
        CHECK(rig.exchanger.calls() == 1);
        rig.clock.advance_to(due);
        rig.refresher.step();
        CHECK(rig.exchanger.calls() == 2);
    }

    TEST_CASE("while the upstream fails, cached keys are served until shortly before expiry, then none")
    {
        Rig rig{15min};
        rig.refresher.step();
        const auto first = rig.refresher.servable();
        REQUIRE(first);
        for (int i = 0; i < 100; ++i) {
            rig.exchanger.fail_next(cw::ExchangeOutcome::retryable, 503);
        }
        std::vector<cw::Millis> gaps;
        auto next = rig.refresher.status().next_attempt;
        while (rig.clock.steady_now() < first->credentials.end() + 1min) {
            rig.clock.advance_to(next);
            const auto after = rig.refresher.step();
            gaps.push_back(std::chrono::duration_cast<cw::Millis>(after - next));
            next = after;
            const auto served = rig.refresher.servable();
            if (rig.clock.steady_now() < first->serve_until) {
                CHECK(served == first);
            } else {
                CHECK_FALSE(served);  // never a key past expiry minus the margin
            }
        }
        // Backoff grows and stays capped: 0.75 s, 1.5 s, 3 s, ... 22.5 s.
        REQUIRE(gaps.size() > 6);
        CHECK(gaps[0] == 750ms);
        CHECK(gaps[1] == 1500ms);
        CHECK(gaps[2] == 3s);
        CHECK(gaps.back() == 22500ms);
        const auto status = rig.refresher.status();
        CHECK(status.last->result == "retryable");
        CHECK(status.last->http_status == 503);
        CHECK(status.consecutive_failures == static_cast<int>(gaps.size()));
    }

    TEST_CASE("an upstream back just before the cached keys run out is asked before they do")
    {
        // Failing since the renewal was due: backoff reaches its 22.5 s cap,
        // which would carry the last retry past the end of serving.
        Rig rig{15min};
        rig.refresher.step();
        const auto first = rig.refresher.servable();
        REQUIRE(first);
        for (int i = 0; i < 100; ++i) {
            rig.exchanger.fail_next(cw::ExchangeOutcome::retryable, 503);
        }
        auto next = rig.refresher.status().next_attempt;
        while (next + 22500ms < first->serve_until) {
            rig.clock.advance_to(next);
            next = rig.refresher.step();
        }
        // This failure's backoff would end after serving does.
        rig.clock.advance_to(next);
        next = rig.refresher.step();
        // The upstream recovers now; the next attempt comes while the keys are still served.
        rig.exchanger.clear_script();
        CHECK(next <= first->serve_until - cw::RefreshSettings{}.retry_initial);
        rig.clock.advance_to(next);
        rig.refresher.step();
        const auto renewed = rig.refresher.servable();
        REQUIRE(renewed);
        CHECK(renewed != first);
    }

    TEST_CASE("near the end of the cached keys, Retry-After still holds")
    {
        Rig rig{15min};
        rig.refresher.step();
        const auto first = rig.refresher.servable();
        REQUIRE(first);
        rig.clock.advance_to(first->serve_until - 10s);
        rig.exchanger.fail_next(cw::ExchangeOutcome::retryable, 429, cw::Millis{20s});
        const auto retry_at = rig.refresher.step();
        CHECK(retry_at - rig.clock.steady_now() >= 20s);
    }

    TEST_CASE("a rejected token is not retried until the cap, unless the token rotates")
    {
        Rig rig;
        rig.exchanger.fail_next(cw::ExchangeOutcome::rejected, 401);
        const auto retry_at = rig.refresher.step();
        CHECK(retry_at - rig.clock.steady_now() >= 15s);
        rig.clock.advance(1s);
        CHECK(rig.refresher.step() == retry_at);
        CHECK(rig.exchanger.calls() == 1);

        std::ofstream{rig.token_file, std::ios::trunc} << "token-two";
        rig.tokens.reload();  // what the watcher does on the directory event
        CHECK(rig.refresher.status().next_attempt == rig.clock.steady_now());
        rig.refresher.step();
        CHECK(rig.exchanger.calls() == 2);
        CHECK(rig.exchanger.last_token() == "token-two");
        CHECK(rig.refresher.servable());
    }

    TEST_CASE("a rotation during an exchange that is then rejected retries at once with the new token")
    {
        Rig rig;
        rig.exchanger.fail_next(cw::ExchangeOutcome::rejected, 401);
        rig.exchanger.hold(true);
        cw::SteadyTime retry_at;
        std::thread attempt{[&] { retry_at = rig.refresher.step(); }};
        rig.exchanger.wait_for_call();
        std::ofstream{rig.token_file, std::ios::trunc} << "token-two";
        rig.tokens.reload();  // the watcher sees the rotation mid-flight
        rig.exchanger.hold(false);
        attempt.join();
        CHECK(retry_at == rig.clock.steady_now());
        rig.refresher.step();
        CHECK(rig.exchanger.calls() == 2);
        CHECK(rig.exchanger.last_token() == "token-two");
        CHECK(rig.refresher.servable());
    }

    TEST_CASE("a rotation while healthy does not cause an extra exchange")
    {
        Rig rig;
        const auto due = rig.refresher.step();
        std::ofstream{rig.token_file, std::ios::trunc} << "token-two";
        rig.tokens.reload();
        CHECK(rig.refresher.status().next_attempt == due);
        rig.clock.advance_to(due);
        rig.refresher.step();
        CHECK(rig.exchanger.last_token() == "token-two");
    }

    TEST_CASE("Retry-After from a 429 is honoured")
    {
        Rig rig;
        rig.exchanger.fail_next(cw::ExchangeOutcome::retryable, 429, cw::Millis{20s});
        const auto retry_at = rig.refresher.step();
        // No earlier than Retry-After; then the first backoff step (at most 1 s).
        CHECK(retry_at - rig.clock.steady_now() >= 20s);
        CHECK(retry_at - rig.clock.steady_now() <= 21s);
    }

    TEST_CASE("with no token file, nothing is sent upstream and the reason is kept")
    {
        cw::test::TempDir dir;
        cw::test::FakeClock clock;
        FakeExchanger exchanger{clock, 15min};
        cw::TokenSource tokens{dir.path() / "absent"};
        RecordingObserver metrics;
        cw::Refresher refresher{exchanger, tokens, {}, metrics, clock, [] { return 0.5; }};
        refresher.step();
        CHECK(exchanger.calls() == 0);
        CHECK_FALSE(refresher.servable());
        const auto status = refresher.status();
        CHECK(status.last->result == "token-unavailable");
        CHECK(status.last->detail == "No such file or directory");
    }

    TEST_CASE("any number of concurrent callers cause exactly one exchange, answered from memory")
    {
        // While the first exchange is held in flight, every kind of caller
        // the sidecar has runs at once: request threads that find nothing to
        // serve (servable(), then wait_for_first()), status readers, and the
        // token watcher reporting rotations (which really can make an
        // exchange due). None of them may start a second exchange.
        Rig rig;
        rig.exchanger.hold(true);
        std::thread loop{[&] { rig.refresher.run(); }};
        rig.exchanger.wait_for_call();

        constexpr int k_callers = 64;
        std::atomic<int> before_release{0};
        std::atomic<int> served_while_held{0};
        std::atomic<int> answered_from_memory{0};
        std::vector<std::thread> callers;
        for (int i = 0; i < k_callers; ++i) {
            callers.emplace_back([&, i] {
                if (rig.refresher.servable()) {
                    ++served_while_held;
                }
                (void)rig.refresher.status();
                if (i % 8 == 0) {
                    rig.refresher.token_changed();
                }
                ++before_release;
                const auto served = rig.refresher.wait_for_first(30s);
                if (served && served->credentials.access_key_id == "CWAKKEY1") {
                    ++answered_from_memory;
                }
            });
        }
        // Every caller has had its go while the exchange is held, unless one
        // of them is stuck in a second exchange of its own.
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (before_release < k_callers && rig.exchanger.calls() == 1 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(1ms);
        }
        CHECK(rig.exchanger.calls() == 1);
        CHECK(served_while_held == 0);

        rig.exchanger.hold(false);
        for (auto& caller : callers) {
            caller.join();
        }
        rig.refresher.stop();
        loop.join();
        CHECK(answered_from_memory == k_callers);
        CHECK(rig.exchanger.calls() == 1);
    }

    TEST_CASE("stop() interrupts an exchange that hangs")
    {
        Rig rig;
        rig.exchanger.hold(true);
        std::thread loop{[&] { rig.refresher.run(); }};
        rig.exchanger.wait_for_call();
        rig.refresher.stop();
        loop.join();  // returns because cancel() released the exchange
        CHECK_FALSE(rig.refresher.servable());
        CHECK(rig.refresher.status().consecutive_failures == 0);
    }
    TEST_CASE("a node clock minutes or hours off the upstream's keeps serving fresh keys, each with over 70% left")
    {
        for (const cw::Millis upstream_ahead :
             {cw::Millis{-3h}, cw::Millis{-10min}, cw::Millis{10min}, cw::Millis{3h}}) {
            for (const cw::Millis lifetime : {cw::Millis{60s}, cw::Millis{120s}, cw::Millis{15min}}) {
                CAPTURE(upstream_ahead.count());
                CAPTURE(lifetime.count());
                Rig rig{lifetime};
                rig.exchanger.set_upstream_ahead(upstream_ahead);
                const auto step = lifetime / 60;
                for (int i = 0; i < 600; ++i) {  // ten lifetimes
                    rig.refresher.step();
                    const auto served = rig.refresher.servable();
                    REQUIRE(served);
                    // The SDK compares Expiration with this node's clock: it must see the real time left.
                    CHECK(left_share(*served, rig.clock.now()) > 0.70);
                    CHECK(left_share(*served, rig.clock.now()) <= 1.0);
                    rig.clock.advance(step);
                }
                // One renewal per 0.2375 lifetimes: 10 / 0.2375 = 42, plus the first.
                CHECK(rig.exchanger.calls() >= 40);
                CHECK(rig.exchanger.calls() <= 45);
            }
        }
    }

    TEST_CASE("a wall clock stepped back 2 h neither delays renewal nor stretches the served Expiration")
    {
        Rig rig{60s};
        const auto due = rig.refresher.step();
        const auto first = rig.refresher.servable();
        REQUIRE(first);
        const auto real_end = first->credentials.end();
        rig.clock.step_wall(-2h);
        const auto restated = rig.refresher.servable();
        REQUIRE(restated);
        // The same key, its end stated in the clock the SDK now reads: a minute from now, not 2 h.
        CHECK(restated->credentials.access_key_id == first->credentials.access_key_id);
        CHECK(served_expiration(*restated) - rig.clock.now() <= 60s);
        CHECK(served_expiration(*restated) - rig.clock.now() >= 58s);
        // Renewal comes when scheduled; while it fails, the key is served up
        // to its real end less the margin, and not a moment longer.
        for (int i = 0; i < 100; ++i) {
            rig.exchanger.fail_next(cw::ExchangeOutcome::retryable, 503);
        }
        CHECK(rig.refresher.status().next_attempt == due);
        rig.clock.advance_to(due);
        rig.refresher.step();
        CHECK(rig.exchanger.calls() == 2);
        rig.clock.advance_to(first->serve_until - 1ms);
        CHECK(rig.refresher.servable());
        rig.clock.advance_to(first->serve_until);
        CHECK_FALSE(rig.refresher.servable());
        CHECK(first->serve_until == real_end - 6s);  // the margin: a tenth of 60 s
    }

    TEST_CASE("a wall clock stepped forward keeps the key served, with Expiration restated")
    {
        Rig rig{15min};
        rig.refresher.step();
        rig.clock.step_wall(2h);
        const auto served = rig.refresher.servable();
        REQUIRE(served);
        CHECK(left_share(*served, rig.clock.now()) > 0.99);
    }

    TEST_CASE("/healthz allows a whole exchange, however long --exchange-timeout is, before calling the loop stuck")
    {
        CHECK(cw::stall_allowance(10s) == 40s);
        CHECK(cw::stall_allowance(10min) > 10min + 5s);  // longer than the exchange plus the loop's longest sleep
    }

    TEST_CASE("keys too short to outlast the margin are a failure with backoff, not a loop of exchanges")
    {
        Rig rig{1s};  // `--duration 1s`: with Date's second taken off, nothing is left to serve
        const auto start = rig.clock.steady_now();
        for (int i = 0; i < 50; ++i) {
            rig.clock.advance_to(std::max(rig.refresher.step(), rig.clock.steady_now()));
        }
        CHECK_FALSE(rig.refresher.servable());
        const auto status = rig.refresher.status();
        CHECK(status.last->result == "malformed");
        CHECK(status.last->detail == "a key of 1s ends within the expiry margin: nothing to serve");
        // Backing off up to the 30 s cap: 50 attempts span over ten minutes, not an instant.
        CHECK(rig.exchanger.calls() == 50);
        CHECK(rig.clock.steady_now() - start > 10min);
    }
}

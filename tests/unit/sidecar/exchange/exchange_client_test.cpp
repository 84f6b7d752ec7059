// The libcurl client against a local plain-HTTP server (http:// is allowed
// for loopback). TLS itself is covered by the integration tests.
#include <doctest/doctest.h>

#include <condition_variable>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/time_format.hpp"
#include "fake_clock.hpp"
#include "sidecar/exchange/exchange_client.hpp"

using namespace std::chrono_literals;

namespace {

const std::string k_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

// A loopback HTTP server whose handlers a test sets, running on its own thread.
class LocalUpstream {
public:
    LocalUpstream()
    {
        m_port = m_server.bind_to_any_port("127.0.0.1");
        m_thread = std::thread{[this] { m_server.listen_after_bind(); }};
    }
    ~LocalUpstream()
    {
        release();
        m_server.stop();
        m_thread.join();
    }
    LocalUpstream(const LocalUpstream&) = delete;
    LocalUpstream& operator=(const LocalUpstream&) = delete;

    httplib::Server& server() { return m_server; }

    cw::UpstreamSettings settings(cw::ExchangeMode mode = cw::ExchangeMode::container_credentials) const
    {
        cw::UpstreamSettings settings;
        settings.mode = mode;
        settings.org_id = "my-org";
        settings.endpoint = "http://127.0.0.1:" + std::to_string(m_port) + "/exchange";
        return settings;
    }

    // Blocks a handler until release() (or the destructor).
    void hold()
    {
        std::unique_lock lock{m_mutex};
        m_entered = true;
        m_cv.notify_all();
        m_cv.wait(lock, [this] { return m_released; });
    }
    void wait_entered()
    {
        std::unique_lock lock{m_mutex};
        m_cv.wait(lock, [this] { return m_entered; });
    }
    void release()
    {
        const std::lock_guard lock{m_mutex};
        m_released = true;
        m_cv.notify_all();
    }

private:
    httplib::Server m_server;
    int m_port = 0;
    std::thread m_thread;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_entered = false;
    bool m_released = false;
};

// An hour from now by default: CoreWeave's keys live at most 12 h.
std::string in_an_hour()
{
    return cw::format_rfc3339(std::chrono::system_clock::now() + 1h);
}

std::string container_answer(const std::string& expiration = in_an_hour())
{
    return nlohmann::json{{"AccessKeyId", "CWAKIAEXAMPLE1234567"},
                          {"SecretAccessKey", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"},
                          {"Token", ""},
                          {"Expiration", expiration}}
        .dump();
}

}  // namespace

TEST_SUITE("sidecar::ExchangeClient")
{
    TEST_CASE("container-credentials mode sends the raw JWT as Authorization with a GET")
    {
        LocalUpstream upstream;
        std::string authorization;
        upstream.server().Get("/exchange", [&](const httplib::Request& req, httplib::Response& res) {
            authorization = req.get_header_value("Authorization");
            res.set_header("Date", "Sat, 14 Mar 2026 21:44:43 GMT");
            res.set_content(container_answer("2026-03-14T21:59:43Z"), "application/json");
        });
        const auto result = cw::make_exchange_client(upstream.settings())->exchange(k_token);
        CHECK(authorization == k_token);
        REQUIRE(result.outcome == cw::ExchangeOutcome::ok);
        CHECK(result.http_status == 200);
        CHECK(result.credentials->access_key_id == "CWAKIAEXAMPLE1234567");
        CHECK(result.credentials->expiration == cw::parse_rfc3339("2026-03-14T21:59:43Z"));
        CHECK(result.credentials->lifetime() == 15min);  // on the upstream's clock, though ours reads months later
        CHECK(result.server_date == cw::parse_rfc3339("2026-03-14T21:44:43Z"));
    }

    TEST_CASE("a key's end is counted from when the request was sent, not from a slow answer")
    {
        LocalUpstream upstream;
        cw::test::FakeClock clock;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            clock.advance(40s);  // the upstream takes its time; the key's life runs meanwhile
            res.set_header("Date", "Sat, 14 Mar 2026 21:44:43 GMT");
            res.set_content(container_answer("2026-03-14T21:59:43Z"), "application/json");
        });
        const cw::SteadyTime sent = clock.steady_now();
        const auto result = cw::make_exchange_client(upstream.settings(), clock)->exchange(k_token);
        REQUIRE(result.outcome == cw::ExchangeOutcome::ok);
        CHECK(result.latency == 40s);
        // 15 minutes from the request, less the Date header's second.
        CHECK(result.credentials->end() == sent + 15min - 1s);
    }

    TEST_CASE("oidc mode POSTs JSON with duration, org id and token, and no Authorization")
    {
        LocalUpstream upstream;
        nlohmann::json body;
        bool had_authorization = true;
        upstream.server().Post("/exchange", [&](const httplib::Request& req, httplib::Response& res) {
            body = nlohmann::json::parse(req.body);
            had_authorization = req.has_header("Authorization");
            res.set_content(
                R"({"accessKeyId":"CWAKOIDC","secretKey":"s","principalName":"p","expiry":")" + in_an_hour() + R"("})",
                "application/json");
        });
        auto settings = upstream.settings(cw::ExchangeMode::oidc);
        settings.duration = 2h;
        const auto result = cw::make_exchange_client(settings)->exchange(k_token);
        REQUIRE(result.outcome == cw::ExchangeOutcome::ok);
        CHECK(result.credentials->access_key_id == "CWAKOIDC");
        CHECK(body["durationSeconds"] == 7200);
        CHECK(body["orgId"] == "my-org");
        CHECK(body["oidcToken"] == k_token);
        CHECK_FALSE(had_authorization);
    }

    TEST_CASE("a 4xx is a rejection whose detail keeps the status but not an echoed token")
    {
        LocalUpstream upstream;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            res.status = 401;
            res.set_content(R"({"code":16,"message":"bad token )" + k_token + R"("})", "application/json");
        });
        const auto result = cw::make_exchange_client(upstream.settings())->exchange(k_token);
        CHECK(result.outcome == cw::ExchangeOutcome::rejected);
        CHECK(result.http_status == 401);
        CHECK(result.detail.find("HTTP 401") == 0);
        CHECK(result.detail.find("bad token") != std::string::npos);
        CHECK(result.detail.find(k_token) == std::string::npos);
    }

    TEST_CASE("429 with Retry-After and 5xx are retryable")
    {
        LocalUpstream upstream;
        int status = 429;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            res.status = status;
            res.set_header("Retry-After", "7");
            res.set_content("{}", "application/json");
        });
        const auto client = cw::make_exchange_client(upstream.settings());
        const auto limited = client->exchange(k_token);
        CHECK(limited.outcome == cw::ExchangeOutcome::retryable);
        CHECK(limited.retry_after == cw::Millis{7s});
        status = 503;
        CHECK(client->exchange(k_token).outcome == cw::ExchangeOutcome::retryable);
    }

    TEST_CASE("an answer over the size cap is malformed, not buffered")
    {
        LocalUpstream upstream;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            res.set_content(std::string(1024 * 1024, 'x'), "application/json");
        });
        const auto result = cw::make_exchange_client(upstream.settings())->exchange(k_token);
        CHECK(result.outcome == cw::ExchangeOutcome::malformed);
        CHECK(result.detail == "answer larger than 65536 bytes");
    }

    TEST_CASE("an unusable 200 is malformed")
    {
        LocalUpstream upstream;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            res.set_content(container_answer("2001-01-01T00:00:00Z"), "application/json");
        });
        const auto result = cw::make_exchange_client(upstream.settings())->exchange(k_token);
        CHECK(result.outcome == cw::ExchangeOutcome::malformed);
        CHECK(result.detail == "Expiration is already in the past");
    }

    TEST_CASE("a refused connection and a timeout are retryable")
    {
        cw::UpstreamSettings settings;
        settings.endpoint = "http://127.0.0.1:1/exchange";
        CHECK(cw::make_exchange_client(settings)->exchange(k_token).outcome == cw::ExchangeOutcome::retryable);

        LocalUpstream upstream;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            upstream.hold();
            res.set_content(container_answer(), "application/json");
        });
        auto slow = upstream.settings();
        slow.exchange_timeout = 200ms;
        const auto result = cw::make_exchange_client(slow)->exchange(k_token);
        CHECK(result.outcome == cw::ExchangeOutcome::retryable);
        CHECK(result.detail.find("Timeout") != std::string::npos);
    }

    TEST_CASE("cancel() ends a hanging exchange at once")
    {
        LocalUpstream upstream;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            upstream.hold();
            res.set_content(container_answer(), "application/json");
        });
        auto settings = upstream.settings();
        settings.exchange_timeout = 60s;
        const auto client = cw::make_exchange_client(settings);
        std::thread canceller{[&] {
            upstream.wait_entered();
            client->cancel();
        }};
        const auto result = client->exchange(k_token);
        canceller.join();
        CHECK(result.outcome == cw::ExchangeOutcome::cancelled);
    }

    TEST_CASE("HTTP statuses are classified as the contract says")
    {
        CHECK(cw::classify_http_status(400) == cw::ExchangeOutcome::rejected);
        CHECK(cw::classify_http_status(401) == cw::ExchangeOutcome::rejected);
        CHECK(cw::classify_http_status(403) == cw::ExchangeOutcome::rejected);
        CHECK(cw::classify_http_status(404) == cw::ExchangeOutcome::rejected);
        CHECK(cw::classify_http_status(408) == cw::ExchangeOutcome::retryable);
        CHECK(cw::classify_http_status(429) == cw::ExchangeOutcome::retryable);
        CHECK(cw::classify_http_status(500) == cw::ExchangeOutcome::retryable);
        CHECK(cw::classify_http_status(503) == cw::ExchangeOutcome::retryable);
    }

    TEST_CASE("Retry-After is read as seconds or a date, and bounded")
    {
        const auto now = *cw::parse_rfc3339("2026-03-14T21:44:43Z");
        CHECK(cw::parse_retry_after("7", now) == cw::Millis{7s});
        CHECK(cw::parse_retry_after("Sat, 14 Mar 2026 21:45:13 GMT", now) == cw::Millis{30s});
        CHECK(cw::parse_retry_after("Sat, 14 Mar 2026 21:00:00 GMT", now) == cw::Millis{0});
        CHECK(cw::parse_retry_after("86400", now) == cw::Millis{5min});
        CHECK_FALSE(cw::parse_retry_after("soon", now));
        CHECK_FALSE(cw::parse_retry_after("", now));
    }

    TEST_CASE("a Retry-After date is read against the upstream's Date, not this node's clock")
    {
        LocalUpstream upstream;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            res.status = 429;
            res.set_header("Date", "Sat, 14 Mar 2026 21:44:43 GMT");  // months behind this node
            res.set_header("Retry-After", "Sat, 14 Mar 2026 21:45:13 GMT");
            res.set_content("{}", "application/json");
        });
        const auto result = cw::make_exchange_client(upstream.settings())->exchange(k_token);
        CHECK(result.retry_after == cw::Millis{30s});
    }

    TEST_CASE("an answer whose Date would make the key live longer than 12 h is malformed")
    {
        LocalUpstream upstream;
        upstream.server().Get("/exchange", [&](const httplib::Request&, httplib::Response& res) {
            res.set_header("Date", "Thu, 01 Jan 1970 00:00:00 GMT");  // an upstream clock never set
            res.set_content(container_answer(), "application/json");
        });
        const auto result = cw::make_exchange_client(upstream.settings())->exchange(k_token);
        CHECK(result.outcome == cw::ExchangeOutcome::malformed);
        CHECK(result.detail == "Expiration is more than 12 h away: is the upstream's Date wrong?");
        CHECK_FALSE(result.credentials);
    }

    TEST_CASE("an org id that is not UTF-8 is sent replaced, not thrown on the refresher thread")
    {
        LocalUpstream upstream;
        std::string org_id;
        upstream.server().Post("/exchange", [&](const httplib::Request& req, httplib::Response& res) {
            org_id = nlohmann::json::parse(req.body)["orgId"].get<std::string>();
            res.status = 403;
        });
        auto settings = upstream.settings(cw::ExchangeMode::oidc);
        settings.org_id = "org\xff";
        const auto result = cw::make_exchange_client(settings)->exchange(k_token);
        CHECK(result.outcome == cw::ExchangeOutcome::rejected);
        CHECK(org_id == "org\xEF\xBF\xBD");  // U+FFFD
    }
}

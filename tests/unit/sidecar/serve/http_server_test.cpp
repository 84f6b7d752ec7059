// The server in-process, with a scripted exchanger and a real token file.
#include <doctest/doctest.h>

#include "log_capture.hpp"

#include <algorithm>
#include <cmath>
#include <latch>
#include <sstream>
#include <thread>

#include <httplib.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/redact.hpp"
#include "fake_clock.hpp"
#include "sidecar/serve/http_server.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

class ScriptedExchanger final : public cw::Exchanger {
public:
    cw::ExchangeResult exchange(const std::string&) override
    {
        ++calls;
        if (fail) {
            cw::ExchangeResult result;
            result.outcome = cw::ExchangeOutcome::retryable;
            result.http_status = 503;
            return result;
        }
        const auto now = std::chrono::system_clock::now();
        cw::ExchangeResult result;
        result.outcome = cw::ExchangeOutcome::ok;
        result.credentials =
            cw::Credentials{"CWAKIAEXAMPLE1234567", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "", now + 15min, now,
                            std::nullopt,           cw::BootClock::now()};
        return result;
    }
    void cancel() override {}

    std::atomic<bool> fail{false};
    std::atomic<int> calls{0};
};

// A server on an ephemeral loopback port, fed by a refresher that has
// stepped once (or not at all). The server reads time from `clock` (the
// refresher keeps the real one, as the scripted keys do).
class ServerRig {
public:
    explicit ServerRig(bool fail = false, bool step = true, cw::Routes routes = cw::Routes::all,
                       const std::string& token_name = "token", cw::Millis startup_gate = 2min,
                       const cw::Clock& clock = cw::real_clock())
        : m_token_file(m_dir.write(token_name, "caller-token")),
          m_tokens(m_token_file),
          m_refresher(m_exchanger, m_tokens, {}, m_metrics),
          m_gate(startup_gate, clock.steady_now()),
          m_server(cw::ServerContext{m_refresher, m_tokens, m_tokens, m_metrics, m_upstream,
                                     std::chrono::system_clock::now(), [] { return true; }, m_gate, clock},
                   settings(), routes)
    {
        m_exchanger.fail = fail;
        m_tokens.reload();
        if (step) {
            m_refresher.step();
        }
        m_port = m_server.bind();
        m_thread = std::thread{[this] { m_server.run(); }};
    }
    ~ServerRig()
    {
        m_server.stop();
        m_thread.join();
    }
    ServerRig(const ServerRig&) = delete;
    ServerRig& operator=(const ServerRig&) = delete;

    httplib::Client client() const
    {
        httplib::Client client{"127.0.0.1", m_port};
        client.set_read_timeout(5s);
        return client;
    }

private:
    static cw::ServerSettings settings()
    {
        cw::ServerSettings settings;
        settings.port = 0;
        settings.startup_wait = 50ms;
        return settings;
    }

public:
    cw::Metrics m_metrics;

private:
    cw::test::TempDir m_dir;
    std::filesystem::path m_token_file;
    cw::TokenSource m_tokens;
    ScriptedExchanger m_exchanger;
    cw::UpstreamSettings m_upstream;
    cw::Refresher m_refresher;
    cw::StartupGate m_gate;
    cw::CredentialServer m_server;
    int m_port = 0;
    std::thread m_thread;
};

const httplib::Headers k_auth{{"Authorization", "caller-token"}};

long occurrences(const std::string& text, const std::string& needle)
{
    long count = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++count;
    }
    return count;
}

// The status of an answer, or -1 when none came: a failed check, not a crash.
int status_of(const httplib::Result& result)
{
    return result ? result->status : -1;
}

// The value of an unlabelled metric in Prometheus text, or NaN when absent.
double metric_value(const std::string& text, const std::string& name)
{
    const std::string prefix = "\n" + name + " ";
    const auto at = text.find(prefix);
    if (at == std::string::npos) {
        return std::nan("");
    }
    return std::stod(text.substr(at + prefix.size()));
}

}  // namespace

TEST_SUITE("sidecar::CredentialServer")
{
    TEST_CASE("an authorised caller gets the credentials JSON, uncacheable")
    {
        ServerRig rig;
        auto response = rig.client().Get("/v1/credentials", k_auth);
        REQUIRE(response);
        CHECK(response->status == 200);
        CHECK(response->get_header_value("Content-Type") == "application/json");
        CHECK(response->get_header_value("Cache-Control") == "no-store");
        const auto body = nlohmann::json::parse(response->body);
        CHECK(body["AccessKeyId"] == "CWAKIAEXAMPLE1234567");
        CHECK(body["Token"] == "");
    }

    TEST_CASE("callers without or with a wrong Authorization get 401 and 403 with JSON errors")
    {
        ServerRig rig;
        auto missing = rig.client().Get("/v1/credentials");
        REQUIRE(missing);
        CHECK(missing->status == 401);
        CHECK(nlohmann::json::parse(missing->body)["Code"] == "MissingAuthorization");
        auto wrong = rig.client().Get("/v1/credentials", {{"Authorization", "someone-else"}});
        REQUIRE(wrong);
        CHECK(wrong->status == 403);
        CHECK(nlohmann::json::parse(wrong->body)["Code"] == "InvalidAuthorization");
        CHECK(wrong->body.find("wJalr") == std::string::npos);
    }

    TEST_CASE("health and readiness need no Authorization")
    {
        ServerRig ready;
        CHECK(status_of(ready.client().Get("/healthz")) == 200);
        CHECK(status_of(ready.client().Get("/readyz")) == 200);
        ServerRig failing{true};
        CHECK(status_of(failing.client().Get("/healthz")) == 200);
        CHECK(status_of(failing.client().Get("/readyz")) == 503);
    }

    TEST_CASE("without credentials, callers get 503 with the reason, never a hang")
    {
        ServerRig rig{true};
        auto response = rig.client().Get("/v1/credentials", k_auth);
        REQUIRE(response);
        CHECK(response->status == 503);
        const auto body = nlohmann::json::parse(response->body);
        CHECK(body["Code"] == "CredentialsUnavailable");
        CHECK(body["Message"].get<std::string>().find("retryable (HTTP 503)") != std::string::npos);
    }

    TEST_CASE("before the first exchange, a caller waits briefly, then gets 503")
    {
        ServerRig rig{false, false};
        auto response = rig.client().Get("/v1/credentials", k_auth);
        REQUIRE(response);
        CHECK(response->status == 503);
        CHECK(nlohmann::json::parse(response->body)["Message"].get<std::string>().find("still running") !=
              std::string::npos);
    }

    TEST_CASE("unknown paths are 404 and other methods 405, as JSON")
    {
        ServerRig rig;
        auto missing = rig.client().Get("/latest/meta-data/");
        REQUIRE(missing);
        CHECK(missing->status == 404);
        CHECK(nlohmann::json::parse(missing->body)["Code"] == "NotFound");
        auto post = rig.client().Post("/v1/credentials", k_auth, "", "application/json");
        REQUIRE(post);
        CHECK(post->status == 405);
        CHECK(nlohmann::json::parse(post->body)["Code"] == "MethodNotAllowed");
        CHECK(status_of(rig.client().Delete("/healthz")) == 405);
        CHECK(status_of(rig.client().Put("/nope", "", "text/plain")) == 404);
    }

    TEST_CASE("64 keep-alive clients making 20 requests each are all answered")
    {
        ServerRig rig;
        std::atomic<int> ok{0};
        std::vector<std::thread> clients;
        std::latch start{64};
        for (int i = 0; i < 64; ++i) {
            clients.emplace_back([&] {
                auto client = rig.client();
                client.set_keep_alive(true);
                start.arrive_and_wait();  // all connected at once
                for (int request = 0; request < 20; ++request) {
                    auto response = client.Get("/v1/credentials", k_auth);
                    if (response && response->status == 200) {
                        ++ok;
                    }
                }
            });
        }
        for (auto& client : clients) {
            client.join();
        }
        CHECK(ok == 64 * 20);
    }

    TEST_CASE("/v1/status explains the state without a secret")
    {
        ServerRig rig;
        CHECK(status_of(rig.client().Get("/v1/status")) == 401);
        auto response = rig.client().Get("/v1/status", k_auth);
        REQUIRE(response);
        REQUIRE(response->status == 200);
        const auto status = nlohmann::json::parse(response->body);
        CHECK(status["ready"] == true);
        CHECK(status["credentials"]["access_key_id"] == cw::mask_access_key_id("CWAKIAEXAMPLE1234567"));
        CHECK(status["credentials"]["lifetime_seconds"] == 900);
        CHECK(status["next_refresh"]["reason"].get<std::string>().find("scheduled renewal") == 0);
        CHECK(status["last_exchange"]["result"] == "ok");
        CHECK(status["token"]["fingerprint"] == cw::fingerprint("caller-token"));
        CHECK(status["token"]["jwt_error"].get<std::string>().find("not a JWT") == 0);
        for (const char* secret : {"CWAKIAEXAMPLE1234567", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "caller-token"}) {
            CAPTURE(secret);
            CHECK(response->body.find(secret) == std::string::npos);
        }
    }

    TEST_CASE("/metrics counts answers by path and code, and shows expiry")
    {
        ServerRig rig;
        (void)rig.client().Get("/v1/credentials", k_auth);
        (void)rig.client().Get("/v1/credentials");
        auto response = rig.client().Get("/metrics");
        REQUIRE(response);
        CHECK(response->status == 200);
        const std::string& text = response->body;
        CHECK(text.find(R"(cwcreds_http_requests_total{path="/v1/credentials",code="200"} 1)") != std::string::npos);
        CHECK(text.find(R"(cwcreds_http_requests_total{path="/v1/credentials",code="401"} 1)") != std::string::npos);
        CHECK(text.find(R"(cwcreds_exchanges_total{result="ok"} 1)") != std::string::npos);
        CHECK(text.find("cwcreds_ready 1") != std::string::npos);
        // Keys of 15 minutes obtained a moment ago.
        const double expires_in = metric_value(text, "cwcreds_credentials_expires_in_seconds");
        CHECK(expires_in > 890);
        CHECK(expires_in <= 900);
        CHECK(text.find("CWAKIAEXAMPLE1234567") == std::string::npos);
    }

    TEST_CASE("/v1/status answers when the token file's path is not UTF-8")
    {
        // A path is bytes; the JSON shows U+FFFD where they are not UTF-8.
        ServerRig rig{false, true, cw::Routes::all, "token-\xff\xfe"};
        auto response = rig.client().Get("/v1/status", k_auth);
        REQUIRE(response);
        CHECK(response->status == 200);
        const auto status = nlohmann::json::parse(response->body);
        CHECK(status["token"]["file"].get<std::string>().find("token-\xEF\xBF\xBD") != std::string::npos);
        CHECK(rig.client().Get("/v1/credentials", k_auth)->status == 200);
    }

    TEST_CASE("the probe listener closes each connection after its answer")
    {
        // kubelet opens a connection per probe; none can camp on a probe slot.
        ServerRig rig{false, true, cw::Routes::probes_only};
        auto client = rig.client();
        auto response = client.Get("/healthz");
        REQUIRE(response);
        CHECK(response->status == 200);
        CHECK(response->get_header_value("Connection") == "close");
    }

    TEST_CASE("the probe listener never serves credentials or status")
    {
        ServerRig rig{false, true, cw::Routes::probes_only};
        CHECK(status_of(rig.client().Get("/v1/credentials", k_auth)) == 404);
        CHECK(status_of(rig.client().Get("/v1/status", k_auth)) == 404);
        CHECK(status_of(rig.client().Post("/v1/credentials", k_auth, "", "text/plain")) == 404);
        CHECK(status_of(rig.client().Get("/readyz")) == 200);
        CHECK(status_of(rig.client().Get("/startupz")) == 200);
        CHECK(status_of(rig.client().Get("/healthz")) == 200);
        CHECK(status_of(rig.client().Get("/metrics")) == 200);
    }

    TEST_CASE("without credentials the startup probe waits, then opens after --startup-gate with the reason")
    {
        const LogCapture log;
        cw::test::FakeClock clock;
        ServerRig rig{true, true, cw::Routes::all, "token", 2min, clock};

        auto waiting = rig.client().Get("/startupz");
        REQUIRE(waiting);
        CHECK(waiting->status == 503);
        CHECK(nlohmann::json::parse(waiting->body)["Code"] == "NotStarted");
        clock.advance(2min - 1ms);
        CHECK(status_of(rig.client().Get("/startupz")) == 503);
        CHECK(log.text().find("startup gate open") == std::string::npos);

        clock.advance(1ms);
        auto open = rig.client().Get("/startupz");
        REQUIRE(open);
        CHECK(open->status == 200);
        const auto body = nlohmann::json::parse(open->body);
        CHECK(body.value("status", "") == "gate-open");
        CHECK(body.value("reason", "") == "last exchange: retryable (HTTP 503)");
        CHECK(status_of(rig.client().Get("/startupz")) == 200);

        // Readiness keeps its meaning, and callers learn why there are no keys.
        CHECK(status_of(rig.client().Get("/readyz")) == 503);
        auto credentials = rig.client().Get("/v1/credentials", k_auth);
        REQUIRE(credentials);
        CHECK(credentials->status == 503);
        const auto error = nlohmann::json::parse(credentials->body);
        CHECK(error.value("Code", "") == "CredentialsUnavailable");
        CHECK(error.value("Message", "").find("retryable (HTTP 503)") != std::string::npos);

        // One warning however often the probe asks.
        const std::string text = log.text();
        CHECK(occurrences(text, "startup gate open without credentials") == 1);
        CHECK(text.find("after=2m") != std::string::npos);
        CHECK(text.find("last_exchange=retryable") != std::string::npos);

        auto metrics = rig.client().Get("/metrics");
        REQUIRE(metrics);
        CHECK(metrics->body.find(R"(cwcreds_http_requests_total{path="/startupz",code="503"} 2)") != std::string::npos);
        CHECK(metrics->body.find(R"(cwcreds_http_requests_total{path="/startupz",code="200"} 2)") != std::string::npos);
    }

    TEST_CASE("with credentials the startup probe passes at once")
    {
        cw::test::FakeClock clock;
        ServerRig rig{false, true, cw::Routes::all, "token", 2min, clock};
        auto response = rig.client().Get("/startupz");
        REQUIRE(response);
        CHECK(response->status == 200);
        CHECK(nlohmann::json::parse(response->body) == nlohmann::json{{"status", "ready"}});
    }

    TEST_CASE("--startup-gate 0s never lets the app start without credentials")
    {
        cw::test::FakeClock clock;
        ServerRig rig{true, true, cw::Routes::all, "token", 0ms, clock};
        clock.advance(24h);
        auto response = rig.client().Get("/startupz");
        REQUIRE(response);
        CHECK(response->status == 503);
        CHECK(nlohmann::json::parse(response->body)["Code"] == "NotStarted");
    }

    TEST_CASE("the probe listener opens the startup gate like the main one")
    {
        cw::test::FakeClock clock;
        ServerRig rig{true, true, cw::Routes::probes_only, "token", 2s, clock};
        CHECK(status_of(rig.client().Get("/startupz")) == 503);
        clock.advance(2s);
        auto response = rig.client().Get("/startupz");
        REQUIRE(response);
        CHECK(response->status == 200);
        CHECK(nlohmann::json::parse(response->body)["status"] == "gate-open");
    }
}

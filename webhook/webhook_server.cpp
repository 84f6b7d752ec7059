#include "webhook/webhook_server.hpp"

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "common/logging.hpp"

namespace cw {

namespace {

// Worker threads: cpp-httplib keeps a keep-alive connection on one thread
// for its life, and the API server opens several; 64 covers a burst of
// admissions at once (a 1,000-pod Job) with a few MiB of stacks touched.
constexpr std::size_t k_threads = 64;
// Accepted connections waiting for a worker. Beyond this, the accepting
// thread serves the connection itself, so it stops accepting and further
// clients wait in the kernel backlog: memory stays bounded under a flood.
constexpr std::size_t k_max_queued = 256;

class BoundedPool final : public httplib::TaskQueue {
public:
    BoundedPool()
    {
        for (std::size_t i = 0; i < k_threads; ++i) {
            m_threads.emplace_back([this] { work(); });
        }
    }

    void enqueue(std::function<void()> job) override
    {
        {
            std::unique_lock lock{m_mutex};
            if (m_jobs.size() < k_max_queued) {
                m_jobs.push_back(std::move(job));
                m_ready.notify_one();
                return;
            }
        }
        job();  // backpressure: the accept loop is busy meanwhile
    }

    void shutdown() override
    {
        {
            std::lock_guard lock{m_mutex};
            m_stopping = true;
        }
        m_ready.notify_all();
        for (auto& thread : m_threads) {
            thread.join();
        }
    }

private:
    void work()
    {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock{m_mutex};
                m_ready.wait(lock, [this] { return m_stopping || !m_jobs.empty(); });
                if (m_jobs.empty()) {
                    return;
                }
                job = std::move(m_jobs.front());
                m_jobs.pop_front();
            }
            job();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_ready;
    std::deque<std::function<void()>> m_jobs;
    std::vector<std::thread> m_threads;
    bool m_stopping = false;
};

constexpr std::array k_results{AdmissionResult::mutated, AdmissionResult::unchanged, AdmissionResult::denied,
                               AdmissionResult::bad_request};

}  // namespace

class WebhookServer::Impl {
public:
    Impl(const WebhookSettings& settings, InjectOptions options, CertificateStore& certificates)
        : m_settings(settings),
          m_options(std::move(options)),
          m_certificates(certificates),
          m_server([&certificates](SSL_CTX& ctx) {
              SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
              certificates.attach(ctx);
              return true;
          })
    {
        m_server.new_task_queue = [] { return new BoundedPool; };
        m_server.set_payload_max_length(k_max_review);
        // cpp-httplib writes the head and the body separately; with Nagle on,
        // the body waits for the client's delayed ACK (tens of ms a review).
        m_server.set_tcp_nodelay(true);
        // Per recv(), not per request: the API server sends a review at once,
        // and a silent connection (or a TLS handshake never finished) frees
        // its worker after this. cpp-httplib serves a connection per thread,
        // so a flood of silent connections delays reviews by about
        // connections / threads * this; README.md ("Inject") says how to
        // keep other pods from reaching the webhook.
        m_server.set_read_timeout(std::chrono::seconds{2});
        m_server.set_write_timeout(std::chrono::seconds{5});
        // An idle keep-alive connection holds its worker until this passes,
        // and cpp-httplib checks for stop() only between requests: it bounds
        // how long SIGTERM takes, so keep it well under the pod's grace period.
        m_server.set_keep_alive_timeout(5);
        m_server.set_keep_alive_max_count(10'000);

        // cpp-httplib bounds a body by Content-Length only: one sent chunked
        // is read whole, and a gzip one inflated without a bound. The API
        // server sends every AdmissionReview with a Content-Length and
        // uncompressed, so both are refused here, before any body is read,
        // and the connection closed (the unread body must not be parsed as
        // the next request).
        m_server.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
            const auto refuse = [&](int status, std::string_view reason) {
                response.status = status;
                response.set_header("Connection", "close");
                response.set_content(fmt::format(R"({{"error":"{}"}})", reason), "application/json");
                count(AdmissionResult::bad_request);
                log_event(spdlog::level::warn, "admission refused", {{"reason", reason}});
                return httplib::Server::HandlerResponse::Handled;
            };
            if (request.has_header("Transfer-Encoding")) {
                return refuse(411, "a body sent without Content-Length (chunked) is refused");
            }
            if (request.has_header("Content-Encoding") && request.get_header_value("Content-Encoding") != "identity") {
                return refuse(415, "a compressed body is refused");
            }
            return httplib::Server::HandlerResponse::Unhandled;
        });
        m_server.Post("/mutate", [this](const httplib::Request& request, httplib::Response& response) {
            mutate(request, response);
        });
        m_server.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
            response.set_content("ok\n", "text/plain");
        });
        m_server.Get("/readyz", [](const httplib::Request&, httplib::Response& response) {
            // The certificate loaded at start (or it would not run), and the
            // mutation needs nothing else: ready as soon as it listens.
            response.set_content("ok\n", "text/plain");
        });
        m_server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
            response.set_content(metrics(), "text/plain; version=0.0.4");
        });
        // cpp-httplib answers oversized bodies (413) and unknown paths (404)
        // with an empty body; say what happened.
        m_server.set_error_handler(httplib::Server::HandlerWithResponse{[this](const httplib::Request&,
                                                                               httplib::Response& response) {
            if (!response.body.empty()) {
                return httplib::Server::HandlerResponse::Unhandled;
            }
            if (response.status == 413) {
                response.status = 400;
                count(AdmissionResult::bad_request);
                response.set_content(fmt::format(R"({{"error":"AdmissionReview larger than {} bytes"}})", k_max_review),
                                     "application/json");
                log_event(spdlog::level::warn, "admission refused", {{"reason", "body too large"}});
            } else {
                response.set_content(
                    fmt::format(R"({{"error":"{}"}})", response.status == 404 ? "not found" : "request refused"),
                    "application/json");
            }
            return httplib::Server::HandlerResponse::Handled;
        }});
    }

    int bind()
    {
        const int port = m_settings.port == 0
                             ? m_server.bind_to_any_port(m_settings.host)
                             : (m_server.bind_to_port(m_settings.host, m_settings.port) ? m_settings.port : -1);
        if (port < 0) {
            throw std::runtime_error{fmt::format("cannot listen on {}:{}", m_settings.host, m_settings.port)};
        }
        return port;
    }

    void run()
    {
        m_server.listen_after_bind();
        m_run_returned = true;
    }

    void stop()
    {
        // cpp-httplib's stop() does nothing until the accept loop runs; a
        // SIGTERM right after start must not leave run() serving for ever.
        while (!m_server.is_running() && !m_run_returned) {
            std::this_thread::sleep_for(std::chrono::milliseconds{1});
        }
        m_server.stop();
    }

    std::string metrics() const
    {
        std::string out =
            "# HELP cwcreds_webhook_admissions_total AdmissionReviews answered, by result.\n"
            "# TYPE cwcreds_webhook_admissions_total counter\n";
        for (const auto result : k_results) {
            out += fmt::format("cwcreds_webhook_admissions_total{{result=\"{}\"}} {}\n", admission_result_name(result),
                               m_counts[static_cast<std::size_t>(result)].load());
        }
        out += fmt::format(
            "# HELP cwcreds_webhook_admission_seconds_total Time spent answering AdmissionReviews.\n"
            "# TYPE cwcreds_webhook_admission_seconds_total counter\n"
            "cwcreds_webhook_admission_seconds_total {:.6f}\n",
            static_cast<double>(m_micros.load()) / 1e6);
        out += fmt::format(
            "# HELP cwcreds_webhook_certificate_reloads_total Serving certificate reloads, by result.\n"
            "# TYPE cwcreds_webhook_certificate_reloads_total counter\n"
            "cwcreds_webhook_certificate_reloads_total{{result=\"ok\"}} {}\n"
            "cwcreds_webhook_certificate_reloads_total{{result=\"failed\"}} {}\n",
            m_certificates.reloads(), m_certificates.failed_reloads());
        out += fmt::format(
            "# HELP cwcreds_webhook_certificate_expiry_timestamp_seconds notAfter of the serving "
            "certificate.\n"
            "# TYPE cwcreds_webhook_certificate_expiry_timestamp_seconds gauge\n"
            "cwcreds_webhook_certificate_expiry_timestamp_seconds {}\n",
            m_certificates.not_after());
        out += fmt::format(
            "# HELP cwcreds_build_info The running version.\n# TYPE cwcreds_build_info gauge\n"
            "cwcreds_build_info{{version=\"{}\"}} 1\n",
            CWCREDS_VERSION);
        return out;
    }

private:
    void count(AdmissionResult result) { ++m_counts[static_cast<std::size_t>(result)]; }

    void mutate(const httplib::Request& request, httplib::Response& response)
    {
        const auto start = std::chrono::steady_clock::now();
        const AdmissionAnswer answer = review_admission(request.body, m_options);
        response.status = answer.http_status;
        response.set_content(answer.body, "application/json");
        count(answer.result);
        m_micros += static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
        if (answer.result == AdmissionResult::denied || answer.result == AdmissionResult::bad_request) {
            log_event(spdlog::level::warn, "admission refused",
                      {{"result", std::string{admission_result_name(answer.result)}},
                       {"pod", answer.pod},
                       {"reason", answer.reason}});
        } else {
            log_event(spdlog::level::debug, "admission",
                      {{"result", std::string{admission_result_name(answer.result)}}, {"pod", answer.pod}});
        }
    }

    WebhookSettings m_settings;
    InjectOptions m_options;
    CertificateStore& m_certificates;
    httplib::SSLServer m_server;
    std::array<std::atomic<std::uint64_t>, k_results.size()> m_counts{};
    std::atomic<std::uint64_t> m_micros{0};
    std::atomic<bool> m_run_returned{false};
};

WebhookServer::WebhookServer(const WebhookSettings& settings, InjectOptions options, CertificateStore& certificates)
    : m_impl(std::make_unique<Impl>(settings, std::move(options), certificates))
{
}

WebhookServer::~WebhookServer() = default;

int WebhookServer::bind()
{
    return m_impl->bind();
}

void WebhookServer::run()
{
    m_impl->run();
}

void WebhookServer::stop()
{
    m_impl->stop();
}

std::string WebhookServer::metrics() const
{
    return m_impl->metrics();
}

}  // namespace cw

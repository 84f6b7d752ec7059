#include "webhook/webhook_server.hpp"

#include <openssl/ssl.h>

#include <chrono>
#include <stdexcept>

#include <spdlog/fmt/fmt.h>

#include "common/event_http_server.hpp"
#include "common/logging.hpp"

namespace cw {

namespace {

using namespace std::chrono_literals;

// The API server gives a webhook timeoutSeconds (5 in manifests/webhook) to
// answer; a request that has not arrived whole by then (handshake, head and
// body) fails admission anyway, so its connection is given up.
constexpr Millis k_whole_request{5000};
// The API server keeps its connections for reuse; one idle this long is
// closed (and at the cap, idle ones make room first).
constexpr Millis k_idle{60'000};
constexpr std::size_t k_max_head = 16 * 1024;
// All connections' buffers together: five reviews of the largest size at
// once. Past it, the connection waiting longest on its client is closed
// first, so a body trickled in to hold memory goes before one arriving whole.
constexpr std::size_t k_buffer_budget = 16U << 20U;

constexpr std::array k_results{AdmissionResult::mutated, AdmissionResult::unchanged, AdmissionResult::denied,
                               AdmissionResult::bad_request};

struct SslContextFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

// One context for every connection. Renegotiation, session tickets and the
// session cache are off: the API server needs none of them, and each is
// per-connection work or memory a neighbour could ask for.
std::unique_ptr<SSL_CTX, SslContextFree> server_context(CertificateStore& certificates)
{
    std::unique_ptr<SSL_CTX, SslContextFree> ctx{SSL_CTX_new(TLS_server_method())};
    if (!ctx) {
        throw std::runtime_error("cannot create a TLS context");
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx.get(), 0);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    // Idle connections give their record buffers back (about 34 KiB each);
    // writes may be partial and resumed from a moved buffer (non-blocking).
    SSL_CTX_set_mode(ctx.get(),
                     SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    certificates.attach(*ctx);
    return ctx;
}

HttpResponse json_answer(int status, std::string body)
{
    return HttpResponse{status, "application/json", std::move(body), {}};
}

HttpResponse text_answer(std::string body, std::string content_type = "text/plain")
{
    return HttpResponse{200, std::move(content_type), std::move(body), {}};
}

std::string error_body(std::string_view reason)
{
    return fmt::format(R"({{"error":"{}"}})", reason);
}

}  // namespace

class WebhookServer::Impl {
public:
    Impl(const WebhookSettings& settings, InjectOptions options, CertificateStore& certificates,
         WebhookCapacity capacity)
        : m_options(std::move(options)),
          m_certificates(certificates),
          m_tls(server_context(certificates)),
          m_server(
              server_options(settings, capacity, m_tls.get()),
              [this](const HttpRequestHead& request, bool) { return answer(request); },
              [this](const HttpRequestHead* request, const HttpResponse& response) { observe(request, response); })
    {
    }

    int bind() { return m_server.bind(); }
    void run() { m_server.run(); }
    void stop() { m_server.stop(); }

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
        const EventHttpServerStats stats = m_server.stats();
        out += fmt::format(
            "# HELP cwcreds_webhook_connections Connections open now.\n"
            "# TYPE cwcreds_webhook_connections gauge\n"
            "cwcreds_webhook_connections {}\n"
            "# HELP cwcreds_webhook_connections_closed_total Connections closed by the webhook to bound "
            "its resources, by cause.\n"
            "# TYPE cwcreds_webhook_connections_closed_total counter\n"
            "cwcreds_webhook_connections_closed_total{{cause=\"evicted\"}} {}\n"
            "cwcreds_webhook_connections_closed_total{{cause=\"refused\"}} {}\n"
            "cwcreds_webhook_connections_closed_total{{cause=\"buffer_budget\"}} {}\n",
            stats.connections, stats.evictions, stats.refusals, stats.shed);
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
    static EventHttpServerOptions server_options(const WebhookSettings& settings, WebhookCapacity capacity,
                                                 SSL_CTX* tls)
    {
        EventHttpServerOptions options;
        options.host = settings.host;
        options.port = settings.port;
        options.threads = capacity.loops;
        options.max_connections = capacity.max_connections;
        options.max_head = k_max_head;
        options.head_timeout = k_whole_request;
        options.idle_timeout = k_idle;
        options.max_body = k_max_review;
        options.max_buffered = k_buffer_budget;
        options.tls = tls;
        options.error_body = [](int, std::string_view reason) { return error_body(reason); };
        return options;
    }

    std::optional<HttpResponse> answer(const HttpRequestHead& request)
    {
        const bool read = request.method == "GET" || request.method == "HEAD";
        if (request.path == "/mutate") {
            return request.method == "POST" ? mutate(request.body) : json_answer(405, error_body("POST only"));
        }
        if (request.path == "/healthz" || request.path == "/readyz") {
            // The certificate loaded at start (or it would not run), and the
            // mutation needs nothing else: ready as soon as it listens.
            return read ? text_answer("ok\n") : json_answer(405, error_body("GET only"));
        }
        if (request.path == "/metrics") {
            return read ? text_answer(metrics(), "text/plain; version=0.0.4")
                        : json_answer(405, error_body("GET only"));
        }
        return json_answer(404, error_body("not found"));
    }

    HttpResponse mutate(const std::string& body)
    {
        const auto start = std::chrono::steady_clock::now();
        const AdmissionAnswer answer = review_admission(body, m_options);
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
        return json_answer(answer.http_status, answer.body);
    }

    // The engine's own refusals of a review (an unreadable head, a body
    // too large, chunked or compressed) count and log like the handler's.
    void observe(const HttpRequestHead* request, const HttpResponse& response)
    {
        const bool engine_refusal =
            request == nullptr || (request->path == "/mutate" && request->body.empty() &&
                                   (response.status == 411 || response.status == 413 || response.status == 415));
        if (engine_refusal) {
            count(AdmissionResult::bad_request);
            log_event(spdlog::level::warn, "admission refused",
                      {{"reason", refusal_reason(response.status)}, {"status", response.status}});
        }
    }

    static std::string_view refusal_reason(int status)
    {
        switch (status) {
            case 411:
                return "a body sent without Content-Length (chunked) is refused";
            case 413:
                return "body too large";
            case 415:
                return "a compressed body is refused";
            default:
                return "malformed request";
        }
    }

    void count(AdmissionResult result) { ++m_counts[static_cast<std::size_t>(result)]; }

    InjectOptions m_options;
    CertificateStore& m_certificates;
    std::unique_ptr<SSL_CTX, SslContextFree> m_tls;
    EventHttpServer m_server;
    std::array<std::atomic<std::uint64_t>, k_results.size()> m_counts{};
    std::atomic<std::uint64_t> m_micros{0};
};

WebhookServer::WebhookServer(const WebhookSettings& settings, InjectOptions options, CertificateStore& certificates,
                             WebhookCapacity capacity)
    : m_impl(std::make_unique<Impl>(settings, std::move(options), certificates, capacity))
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

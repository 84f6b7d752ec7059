// Routes, caller authentication and answers, on the event-loop server.
//
// Why not cpp-httplib's server: it keeps a thread per keep-alive connection
// and waits for the next request in a 10 ms poll / 1 ms sleep loop. Measured
// here against nginx (1 worker, same JSON as a static file, wrk, 2 cores):
// it reached 0.12-0.75x nginx's throughput with a p99 near 100 ms, where the
// contract asks for well under a millisecond. The event loop
// (common/event_http_server.hpp) answers from memory on a few threads.
//
// Connection settings, and why: keep-alive connections idle for 60 s are
// closed (SDK connection pools reconnect transparently; idle ones cost a few
// hundred bytes, not a thread); a request head must arrive within 10 s and
// 16 KiB; at most --max-connections are open at once. The probe listener
// closes every connection after its answer: kubelet opens one per probe, and
// nothing there can hold a slot between probes. JSON built from paths and
// settings is dumped with invalid UTF-8 replaced (U+FFFD): a path is bytes,
// and nlohmann's default would throw.
#include "sidecar/serve/http_server.hpp"

#include <nlohmann/json.hpp>

#include "common/cpu_budget.hpp"
#include "common/duration.hpp"
#include "common/event_http_server.hpp"
#include "common/jwt_claims.hpp"
#include "common/logging.hpp"
#include "sidecar/serve/caller_auth.hpp"
#include "sidecar/serve/imds.hpp"
#include "sidecar/serve/status_report.hpp"

namespace cw {

namespace {

HttpResponse error_response(int status, std::string_view code, std::string_view message)
{
    HttpResponse response;
    response.status = status;
    response.body = nlohmann::json{{"Code", code}, {"Message", message}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
}

// Why nothing can be served, from the last exchange's result and HTTP
// status only: the sanitised upstream excerpt stays in /v1/status and the log.
std::string last_exchange_text(const std::optional<LastExchange>& last)
{
    if (!last) {
        return "the first exchange is still running";
    }
    std::string text = "last exchange: " + last->result;
    if (last->http_status != 0) {
        text += " (HTTP " + std::to_string(last->http_status) + ")";
    }
    return text;
}

Route route_of(std::string_view path)
{
    if (is_imds_path(path)) {
        return Route::imds;
    }
    for (const Route route :
         {Route::credentials, Route::status, Route::healthz, Route::readyz, Route::startupz, Route::metrics}) {
        if (path == route_path(route)) {
            return route;
        }
    }
    return Route::other;
}

unsigned loop_threads(Routes routes, unsigned configured)
{
    // Enough loops to use the CPUs the sidecar may use, no more: each is a thread.
    if (routes != Routes::all) {  // probes, or instance metadata only
        return 1U;
    }
    return configured != 0 ? configured : std::clamp(cpu_budget().usable, 1U, 4U);
}

}  // namespace

struct CredentialServer::Impl {
    Impl(ServerContext context_in, ServerSettings settings_in, Routes routes_in, CallerOptions callers_in)
        : context(std::move(context_in)),
          settings(std::move(settings_in)),
          routes(routes_in),
          callers(std::move(callers_in)),
          caller_auth(context.client_tokens, callers.accepted_tokens),
          server(
              options(), [this](const HttpRequestHead& request, bool final) { return handle(request, final); },
                 [this](const HttpRequestHead* request, const HttpResponse& response) {
                     context.metrics.count_request(request != nullptr ? route_of(request->path) : Route::other,
                                                   response.status);
                 })
    {
    }

    EventHttpServerOptions options() const
    {
        EventHttpServerOptions out;
        out.host = settings.host;
        out.port = settings.port;
        out.threads = loop_threads(routes, settings.loops);
        out.max_connections = settings.max_connections;
        out.keep_alive = routes == Routes::all;
        out.park_limit = settings.startup_wait;
        return out;
    }

    bool visible(Route route) const
    {
        return route != Route::other && route != Route::imds &&
               (routes == Routes::all || (route != Route::credentials && route != Route::status));
    }

    std::optional<HttpResponse> handle(const HttpRequestHead& request, bool final)
    {
        const Route route = route_of(request.path);
        if (route == Route::imds && callers.imds_sessions != nullptr && routes != Routes::probes_only) {
            return imds(request);
        }
        if (routes == Routes::imds_only || !visible(route)) {
            return error_response(404, "NotFound", "no such path");
        }
        if (request.method != "GET" && request.method != "HEAD") {
            auto response = error_response(405, "MethodNotAllowed", "only GET is supported");
            response.headers.emplace_back("Allow", "GET, HEAD");
            return response;
        }
        switch (route) {
        case Route::credentials:
            return credentials(request, final);
        case Route::status:
            if (auto caller = authenticate(request); auto* refused = std::get_if<HttpResponse>(&caller)) {
                return std::move(*refused);
            }
            return HttpResponse{200, "application/json",
                                status().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                                {{"Cache-Control", "no-store"}}};
        case Route::healthz:
            if (!context.loops_alive()) {
                return error_response(503, "Unhealthy", "a background loop has stopped making progress");
            }
            return HttpResponse{200, "application/json", R"({"status":"ok"})", {}};
        case Route::readyz:
            if (!context.refresher.servable()) {
                return error_response(503, "NotReady", "no unexpired credentials held");
            }
            return HttpResponse{200, "application/json", R"({"status":"ready"})", {}};
        case Route::startupz:
            return startupz();
        case Route::metrics:
            return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                context.metrics.render(metrics_state()), {}};
        case Route::other:
        case Route::imds:  // only with --imds, handled above
            break;
        }
        return error_response(404, "NotFound", "no such path");
    }

    // The hot path: a digest comparison and a copy of pre-rendered JSON.
    std::optional<HttpResponse> credentials(const HttpRequestHead& request, bool final)
    {
        auto caller = authenticate(request);
        if (auto* refused = std::get_if<HttpResponse>(&caller)) {
            return std::move(*refused);
        }
        auto served = context.refresher.servable();
        if (!served) {
            if (!final && !context.refresher.first_attempt_done()) {
                return std::nullopt;  // parked until the first exchange ends, or --startup-wait
            }
            // Two reads, two locks: the first exchange may have published its
            // keys (and marked itself done) between them. Look once more
            // rather than answer 503 next to keys just served.
            served = context.refresher.servable();
        }
        if (served) {
            context.metrics.count_caller(std::get<CallerKind>(caller));
            return HttpResponse{200, "application/json", served->body, {{"Cache-Control", "no-store"}}};
        }
        return error_response(
            503, "CredentialsUnavailable",
            "no unexpired credentials to serve; " + last_exchange_text(context.refresher.status().last));
    }

    // The startup probe: ready with credentials; after the gate, open without
    // them (startup_gate.hpp says why); 503 until then.
    HttpResponse startupz()
    {
        StartupGate& gate = context.startup_gate;
        const bool servable = context.refresher.servable() != nullptr;
        switch (gate.state(servable, context.clock.steady_now())) {
            case StartupState::ready:
                return HttpResponse{200, "application/json", R"({"status":"ready"})", {}};
            case StartupState::gate_open: {
                const auto last = context.refresher.status().last;
                if (gate.first_to_find_open()) {
                    log_event(spdlog::level::warn, "startup gate open without credentials",
                              {{"after", gate.open_after()},
                               {"last_exchange", last ? last->result : std::string{"none"}},
                               {"http_status", last ? last->http_status : 0L}});
                }
                const nlohmann::json body{{"status", "gate-open"}, {"reason", last_exchange_text(last)}};
                return HttpResponse{
                    200, "application/json", body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), {}};
            }
            case StartupState::waiting:
                break;
        }
        if (gate.open_after() == Millis{0}) {
            return error_response(503, "NotStarted",
                                  "no unexpired credentials held yet (--startup-gate 0s: never starts without them)");
        }
        return error_response(503, "NotStarted",
                              "no unexpired credentials held yet; starts without them " +
                                  format_duration(gate.open_after()) + " after start (--startup-gate)");
    }

    // Who the caller is, or the answer refusing it.
    std::variant<CallerKind, HttpResponse> authenticate(const HttpRequestHead& request)
    {
        if (settings.allow_unauthenticated) {
            return CallerKind::unauthenticated;
        }
        const auto verdict = caller_auth.check(
            request.has_authorization ? std::optional<std::string_view>{request.authorization} : std::nullopt);
        if (const auto* kind = std::get_if<CallerKind>(&verdict)) {
            return *kind;
        }
        const auto& refused = std::get<CallerRefusal>(verdict);
        return error_response(refused.status, refused.code, refused.message);
    }

    HttpResponse imds(const HttpRequestHead& request)
    {
        ImdsView view;
        view.served = context.refresher.servable();
        view.region = callers.region;
        const auto token = context.exchange_tokens.current();
        const auto decoded =
            token ? decode_jwt_claims(*token) : std::variant<JwtClaims, JwtError>{JwtError{"no token"}};
        const auto* claims = std::get_if<JwtClaims>(&decoded);
        view.role = imds_role_name(claims != nullptr ? claims->subject : std::string_view{});
        if (!view.served) {
            const auto last = context.refresher.status().last;
            view.unavailable = last ? "last exchange: " + last->result : "the first exchange is still running";
        }
        const SteadyTime now = context.clock.steady_now();
        ImdsAnswer answer = imds_answer(request, *callers.imds_sessions, view, now);
        if (answer.session_issued) {
            context.metrics.count_imds_session();
        }
        if (answer.credentials_served) {
            context.metrics.count_caller(CallerKind::imds_session);
        }
        return std::move(answer.response);
    }

    nlohmann::json status() const
    {
        StatusInputs inputs;
        inputs.refresher = context.refresher.status();
        inputs.servable = context.refresher.servable() != nullptr;
        inputs.token_file = context.exchange_tokens.file();
        inputs.token = context.exchange_tokens.current();
        inputs.token_problem = context.exchange_tokens.problem();
        inputs.token_last_change = context.exchange_tokens.last_change();
        inputs.metrics = &context.metrics;
        inputs.upstream = &context.upstream;
        inputs.started_at = context.started_at;
        inputs.now = context.clock.now();
        inputs.steady_now = context.clock.steady_now();
        nlohmann::json report = status_report(inputs);
        add_caller_status(report, caller_status());
        return report;
    }

    Metrics::State metrics_state() const
    {
        const RefresherStatus refresher = context.refresher.status();
        Metrics::State state;
        state.version = CWCREDS_VERSION;
        state.exchange_mode = context.upstream.mode == ExchangeMode::oidc ? "oidc" : "container-credentials";
        state.now = context.clock.now();
        const SteadyTime steady_now = context.clock.steady_now();
        state.started_at = context.started_at;
        state.ready = context.refresher.servable() != nullptr;
        if (refresher.served) {
            state.credentials_expiry = on_wall_clock(refresher.served->credentials.end(), state.now, steady_now);
            state.credentials_lifetime = refresher.served->credentials.lifetime();
            state.clock_skew = refresher.served->credentials.clock_skew();
        }
        state.next_refresh = on_wall_clock(refresher.next_attempt, state.now, steady_now);
        state.consecutive_failures = refresher.consecutive_failures;
        for (const TokenSource* accepted : callers.accepted_tokens) {
            state.accepted_token_files_unreadable += accepted->problem().empty() ? 0 : 1;
        }
        if (const auto token = context.exchange_tokens.current()) {
            const auto decoded = decode_jwt_claims(*token);
            if (const auto* claims = std::get_if<JwtClaims>(&decoded); claims != nullptr) {
                state.token_expiry = claims->expires_at;
            }
        }
        return state;
    }

    CallerStatus caller_status() const
    {
        CallerStatus out;
        out.metrics = &context.metrics;
        out.accepted_tokens = callers.accepted_tokens;
        out.imds = callers.imds_sessions != nullptr;
        return out;
    }

    ServerContext context;
    const ServerSettings settings;
    const Routes routes;
    const CallerOptions callers;
    CallerAuth caller_auth;
    EventHttpServer server;
};

CredentialServer::CredentialServer(ServerContext context, ServerSettings settings, Routes routes)
    : CredentialServer(std::move(context), std::move(settings), routes, CallerOptions{})
{
}

CredentialServer::CredentialServer(ServerContext context, ServerSettings settings, Routes routes, CallerOptions callers)
    : m_impl(std::make_unique<Impl>(std::move(context), std::move(settings), routes, std::move(callers)))
{
}

CredentialServer::~CredentialServer() = default;

int CredentialServer::bind()
{
    return m_impl->server.bind();
}

void CredentialServer::run()
{
    m_impl->server.run();
}

void CredentialServer::stop()
{
    m_impl->server.stop();
}

void CredentialServer::wake()
{
    m_impl->server.wake();
}

}  // namespace cw

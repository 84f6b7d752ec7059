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
#include "sidecar/http_server.hpp"

#include <nlohmann/json.hpp>

#include "common/cpu_budget.hpp"
#include "common/event_http_server.hpp"
#include "common/jwt_claims.hpp"
#include "common/logging.hpp"
#include "sidecar/status_report.hpp"

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

Route route_of(std::string_view path)
{
    for (const Route route : {Route::credentials, Route::status, Route::healthz, Route::readyz, Route::metrics}) {
        if (path == route_path(route)) {
            return route;
        }
    }
    return Route::other;
}

unsigned loop_threads(Routes routes, unsigned configured)
{
    // Enough loops to use the CPUs the sidecar may use, no more: each is a thread.
    if (routes == Routes::probes_only) {
        return 1U;
    }
    return configured != 0 ? configured : std::clamp(cpu_budget().usable, 1U, 4U);
}

}  // namespace

struct CredentialServer::Impl {
    Impl(ServerContext context_in, ServerSettings settings_in, Routes routes_in)
        : context(std::move(context_in)), settings(std::move(settings_in)), routes(routes_in),
          server(options(), [this](const HttpRequestHead& request, bool final) { return handle(request, final); },
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
        return route != Route::other &&
               (routes == Routes::all || (route != Route::credentials && route != Route::status));
    }

    std::optional<HttpResponse> handle(const HttpRequestHead& request, bool final)
    {
        const Route route = route_of(request.path);
        if (!visible(route)) {
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
            if (auto refused = refuse_caller(request)) {
                return refused;
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
        case Route::metrics:
            return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                context.metrics.render(metrics_state()), {}};
        case Route::other:
            break;
        }
        return error_response(404, "NotFound", "no such path");
    }

    // The hot path: a digest comparison and a copy of pre-rendered JSON.
    std::optional<HttpResponse> credentials(const HttpRequestHead& request, bool final)
    {
        if (auto refused = refuse_caller(request)) {
            return refused;
        }
        if (const auto served = context.refresher.servable()) {
            return HttpResponse{200, "application/json", served->body, {{"Cache-Control", "no-store"}}};
        }
        if (!final && !context.refresher.first_attempt_done()) {
            return std::nullopt;  // parked until the first exchange ends, or --startup-wait
        }
        const auto last = context.refresher.status().last;
        std::string message = "no unexpired credentials to serve";
        if (last) {
            message += "; last exchange: " + last->result;
            if (last->http_status != 0) {
                message += " (HTTP " + std::to_string(last->http_status) + ")";
            }
        } else {
            message += "; the first exchange is still running";
        }
        return error_response(503, "CredentialsUnavailable", message);
    }

    // nullopt when the caller may proceed.
    std::optional<HttpResponse> refuse_caller(const HttpRequestHead& request)
    {
        if (settings.allow_unauthenticated) {
            return std::nullopt;
        }
        TokenSource& tokens = context.client_tokens;
        if (!tokens.available() && (tokens.reload(), !tokens.available())) {
            // Nothing to compare with yet: the caller is not wrong, we are not ready.
            return error_response(503, "CredentialsUnavailable",
                                  "the pod's token file cannot be read yet: " + tokens.problem());
        }
        if (!request.has_authorization) {
            log_event(spdlog::level::warn, "caller rejected", {{"reason", "no Authorization header"}});
            return error_response(
                401, "MissingAuthorization",
                "send the pod's projected token as Authorization (set AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)");
        }
        // The caller may have read a rotated file before our watcher did.
        if (tokens.accepts(request.authorization) || (tokens.reload(), tokens.accepts(request.authorization))) {
            return std::nullopt;
        }
        log_event(spdlog::level::warn, "caller rejected",
                  {{"reason", "Authorization does not match the token file"},
                   {"presented_length", static_cast<long>(request.authorization.size())}});
        return error_response(403, "InvalidAuthorization",
                              "Authorization does not match the pod's current or previous token");
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
        inputs.now = real_clock().now();
        inputs.steady_now = real_clock().steady_now();
        return status_report(inputs);
    }

    Metrics::State metrics_state() const
    {
        const RefresherStatus refresher = context.refresher.status();
        Metrics::State state;
        state.version = CWCREDS_VERSION;
        state.exchange_mode = context.upstream.mode == ExchangeMode::oidc ? "oidc" : "container-credentials";
        state.now = real_clock().now();
        const SteadyTime steady_now = real_clock().steady_now();
        state.started_at = context.started_at;
        state.ready = context.refresher.servable() != nullptr;
        if (refresher.served) {
            state.credentials_expiry = on_wall_clock(refresher.served->credentials.end(), state.now, steady_now);
            state.credentials_lifetime = refresher.served->credentials.lifetime();
            state.clock_skew = refresher.served->credentials.clock_skew();
        }
        state.next_refresh = on_wall_clock(refresher.next_attempt, state.now, steady_now);
        state.consecutive_failures = refresher.consecutive_failures;
        if (const auto token = context.exchange_tokens.current()) {
            const auto decoded = decode_jwt_claims(*token);
            if (const auto* claims = std::get_if<JwtClaims>(&decoded); claims != nullptr) {
                state.token_expiry = claims->expires_at;
            }
        }
        return state;
    }

    ServerContext context;
    const ServerSettings settings;
    const Routes routes;
    EventHttpServer server;
};

CredentialServer::CredentialServer(ServerContext context, ServerSettings settings, Routes routes)
    : m_impl(std::make_unique<Impl>(std::move(context), std::move(settings), routes))
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

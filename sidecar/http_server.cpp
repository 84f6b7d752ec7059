// cpp-httplib wiring: routes, caller authentication, connection handling.
//
// Connection settings, and why:
// - threads: an elastic pool up to --max-connections (connection_pool.hpp),
//   because httplib holds a thread per keep-alive connection;
// - keep-alive: 1 s idle timeout and 1 s read/write timeouts. Loopback
//   clients send whole requests at once, so nothing legitimate waits that
//   long, and a stopped server drains its connections within ~1 s, which
//   keeps shutdown under the 2 s the contract promises;
// - listen backlog: Debian's libcpp-httplib is built with a backlog of 5,
//   too small for a burst of hundreds of connects; we raise it to 1024 by
//   calling listen() again on the bound socket (Linux updates it in place);
// - SO_REUSEADDR but not httplib's default SO_REUSEPORT: a second sidecar
//   on the same port must fail loudly, not silently share the traffic.
#include "sidecar/http_server.hpp"

#include <array>
#include <stdexcept>
#include <sys/socket.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/jwt_claims.hpp"
#include "common/logging.hpp"
#include "sidecar/connection_pool.hpp"
#include "sidecar/status_report.hpp"

namespace cw {

namespace {

constexpr int k_listen_backlog = 1024;
constexpr Millis k_idle_thread_exit{10'000};

void set_error(httplib::Response& response, int status, std::string_view code, std::string_view message)
{
    response.status = status;
    response.set_header("Cache-Control", "no-store");
    response.set_content(nlohmann::json{{"Code", code}, {"Message", message}}.dump(), "application/json");
}

Route route_of(const std::string& path)
{
    for (const Route route : {Route::credentials, Route::status, Route::healthz, Route::readyz, Route::metrics}) {
        if (path == route_path(route)) {
            return route;
        }
    }
    return Route::other;
}

}  // namespace

struct CredentialServer::Impl {
    Impl(ServerContext context_in, ServerSettings settings_in, Routes routes_in)
        : context(std::move(context_in)), settings(std::move(settings_in)), routes(routes_in)
    {
        const std::size_t max_threads = settings.max_connections;
        server.new_task_queue = [max_threads] { return make_connection_pool(max_threads, k_idle_thread_exit).release(); };
        server.set_keep_alive_timeout(1);
        server.set_keep_alive_max_count(100'000);
        server.set_read_timeout(1, 0);
        server.set_write_timeout(1, 0);
        server.set_tcp_nodelay(true);
        server.set_socket_options([this](int fd) {
            const int on = 1;
            ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
            listen_fd = fd;
        });
        // Runs after every answer, errors included: the one place to count.
        server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
            context.metrics.count_request(route_of(req.path), res.status);
        });

        if (routes == Routes::all) {
            server.Get("/v1/credentials", [this](const httplib::Request& req, httplib::Response& res) {
                credentials(req, res);
            });
            server.Get("/v1/status", [this](const httplib::Request& req, httplib::Response& res) {
                if (settings.allow_unauthenticated || authorised(req, res)) {
                    res.set_header("Cache-Control", "no-store");
                    res.set_content(status().dump(2) + "\n", "application/json");
                }
            });
        }
        server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
            if (context.loops_alive()) {
                res.set_content(R"({"status":"ok"})", "application/json");
            } else {
                set_error(res, 503, "Unhealthy", "a background loop has stopped making progress");
            }
        });
        server.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
            if (context.refresher.servable()) {
                res.set_content(R"({"status":"ready"})", "application/json");
            } else {
                set_error(res, 503, "NotReady", "no unexpired credentials held");
            }
        });
        server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(context.metrics.render(metrics_state()), "text/plain; version=0.0.4; charset=utf-8");
        });
        const auto wrong_method = [this](const httplib::Request& req, httplib::Response& res) {
            const Route route = route_of(req.path);
            if (route != Route::other && (routes == Routes::all || (route != Route::credentials && route != Route::status))) {
                res.set_header("Allow", "GET, HEAD");
                set_error(res, 405, "MethodNotAllowed", "only GET is supported");
            } else {
                set_error(res, 404, "NotFound", "no such path");
            }
        };
        server.Post(".*", wrong_method);
        server.Put(".*", wrong_method);
        server.Patch(".*", wrong_method);
        server.Delete(".*", wrong_method);
        server.Options(".*", wrong_method);
        server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (res.body.empty()) {
                const bool not_found = res.status == 404;
                set_error(res, res.status, not_found ? "NotFound" : "BadRequest",
                          not_found ? "no such path" : "request could not be served");
            }
        });
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
        inputs.now = std::chrono::system_clock::now();
        return status_report(inputs);
    }

    Metrics::State metrics_state() const
    {
        const RefresherStatus refresher = context.refresher.status();
        Metrics::State state;
        state.version = CWCREDS_VERSION;
        state.exchange_mode = context.upstream.mode == ExchangeMode::oidc ? "oidc" : "container-credentials";
        state.now = std::chrono::system_clock::now();
        state.started_at = context.started_at;
        state.ready = context.refresher.servable() != nullptr;
        if (refresher.served) {
            state.credentials_expiry = refresher.served->credentials.effective_expiry();
            state.credentials_lifetime = refresher.served->credentials.lifetime();
            state.clock_skew = refresher.served->credentials.clock_skew();
        }
        state.next_refresh = refresher.next_attempt;
        state.consecutive_failures = refresher.consecutive_failures;
        if (const auto token = context.exchange_tokens.current()) {
            const auto decoded = decode_jwt_claims(*token);
            if (const auto* claims = std::get_if<JwtClaims>(&decoded); claims != nullptr) {
                state.token_expiry = claims->expires_at;
            }
        }
        return state;
    }

    void credentials(const httplib::Request& req, httplib::Response& res)
    {
        if (!settings.allow_unauthenticated && !authorised(req, res)) {
            return;
        }
        auto served = context.refresher.servable();
        if (!served) {
            served = context.refresher.wait_for_first(settings.startup_wait);
        }
        if (!served) {
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
            set_error(res, 503, "CredentialsUnavailable", message);
            return;
        }
        res.set_header("Cache-Control", "no-store");
        res.set_content(served->body, "application/json");
    }

    bool authorised(const httplib::Request& req, httplib::Response& res)
    {
        if (!req.has_header("Authorization")) {
            set_error(res, 401, "MissingAuthorization",
                      "send the pod's projected token as Authorization (set AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)");
            log_event(spdlog::level::warn, "caller rejected", {{"reason", "no Authorization header"}});
            return false;
        }
        TokenSource& tokens = context.client_tokens;
        if (!tokens.current() && (tokens.reload(), !tokens.current())) {
            // Nothing to compare with yet: the caller is not wrong, we are not ready.
            set_error(res, 503, "CredentialsUnavailable", "the pod's token file cannot be read yet: " + tokens.problem());
            return false;
        }
        const std::string presented = req.get_header_value("Authorization");
        // The caller may have read a rotated file before our watcher did.
        if (tokens.accepts(presented) || (tokens.reload(), tokens.accepts(presented))) {
            return true;
        }
        set_error(res, 403, "InvalidAuthorization", "Authorization does not match the pod's current or previous token");
        log_event(spdlog::level::warn, "caller rejected",
                  {{"reason", "Authorization does not match the token file"},
                   {"presented_length", static_cast<long>(presented.size())}});
        return false;
    }

    ServerContext context;
    const ServerSettings settings;
    const Routes routes;
    httplib::Server server;
    int listen_fd = -1;
};

CredentialServer::CredentialServer(ServerContext context, ServerSettings settings, Routes routes)
    : m_impl(std::make_unique<Impl>(std::move(context), std::move(settings), routes))
{
}

CredentialServer::~CredentialServer() = default;

int CredentialServer::bind()
{
    auto& impl = *m_impl;
    int port = impl.settings.port;
    if (port == 0) {
        port = impl.server.bind_to_any_port(impl.settings.host);
    } else if (!impl.server.bind_to_port(impl.settings.host, port)) {
        port = -1;
    }
    if (port <= 0 || impl.listen_fd < 0) {
        throw std::runtime_error("cannot listen on " + impl.settings.host + ":" + std::to_string(impl.settings.port) +
                                 " (in use, or not an address of this host)");
    }
    ::listen(impl.listen_fd, k_listen_backlog);
    return port;
}

void CredentialServer::run()
{
    m_impl->server.listen_after_bind();
}

void CredentialServer::stop()
{
    m_impl->server.stop();
}

}  // namespace cw

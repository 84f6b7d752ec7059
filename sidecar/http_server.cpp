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

#include "common/logging.hpp"
#include "sidecar/connection_pool.hpp"

namespace cw {

namespace {

constexpr int k_listen_backlog = 1024;
constexpr Millis k_idle_thread_exit{10'000};
constexpr std::array<std::string_view, 3> k_paths{"/v1/credentials", "/healthz", "/readyz"};

void set_error(httplib::Response& response, int status, std::string_view code, std::string_view message)
{
    response.status = status;
    response.set_header("Cache-Control", "no-store");
    response.set_content(nlohmann::json{{"Code", code}, {"Message", message}}.dump(), "application/json");
}

bool known_path(const std::string& path)
{
    for (const auto known : k_paths) {
        if (path == known) {
            return true;
        }
    }
    return false;
}

}  // namespace

struct CredentialServer::Impl {
    Impl(Refresher& refresher_in, TokenSource& tokens_in, ServerSettings settings_in, std::function<bool()> alive)
        : refresher(refresher_in), tokens(tokens_in), settings(std::move(settings_in)), loops_alive(std::move(alive))
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

        server.Get("/v1/credentials", [this](const httplib::Request& req, httplib::Response& res) {
            credentials(req, res);
        });
        server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
            if (loops_alive()) {
                res.set_content(R"({"status":"ok"})", "application/json");
            } else {
                set_error(res, 503, "Unhealthy", "a background loop has stopped making progress");
            }
        });
        server.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
            if (refresher.servable()) {
                res.set_content(R"({"status":"ready"})", "application/json");
            } else {
                set_error(res, 503, "NotReady", "no unexpired credentials held");
            }
        });
        const auto wrong_method = [](const httplib::Request& req, httplib::Response& res) {
            if (known_path(req.path)) {
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

    void credentials(const httplib::Request& req, httplib::Response& res)
    {
        if (!settings.allow_unauthenticated && !authorised(req, res)) {
            return;
        }
        auto served = refresher.servable();
        if (!served) {
            served = refresher.wait_for_first(settings.startup_wait);
        }
        if (!served) {
            const auto last = refresher.status().last;
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

    Refresher& refresher;
    TokenSource& tokens;
    const ServerSettings settings;
    std::function<bool()> loops_alive;
    httplib::Server server;
    int listen_fd = -1;
};

CredentialServer::CredentialServer(Refresher& refresher, TokenSource& client_tokens, ServerSettings settings,
                                   std::function<bool()> loops_alive)
    : m_impl(std::make_unique<Impl>(refresher, client_tokens, std::move(settings), std::move(loops_alive)))
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

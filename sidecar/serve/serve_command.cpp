// `cwcreds serve`: wires the token source, watcher, refresher and server
// together, runs each loop on its own thread, and shuts them down in order
// when SIGTERM or SIGINT arrives.
#include "sidecar/serve/serve_command.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include <unistd.h>

#include "common/config_error.hpp"
#include "common/cpu_budget.hpp"
#include "common/descriptor_limit.hpp"
#include "common/duration.hpp"
#include "common/logging.hpp"
#include "common/shutdown_signal.hpp"
#include "sidecar/exchange/refresher.hpp"
#include "sidecar/exchange/token_watcher.hpp"
#include "sidecar/serve/http_server.hpp"
#include "sidecar/serve/imds.hpp"

namespace cw {

namespace {

// Descriptors kept for everything but client connections, so that no crowd
// of callers can leave the exchange without a socket: stdio, inotify, the
// watcher's eventfd, libcurl's sockets and resolver, token and CA reads;
// and, per listener, its socket and each loop's epoll and eventfd
// (k_descriptors_per_loop). Idle, the sidecar holds 13.
constexpr std::size_t k_reserved_descriptors = 32;
constexpr std::size_t k_descriptors_per_loop = 2;
constexpr std::size_t k_probe_connections = 64;  // kubelet and a scraper, not a crowd
constexpr std::size_t k_imds_connections = 256;  // this pod's own processes
constexpr unsigned k_max_loops = 4;

std::string_view mode_name(ExchangeMode mode)
{
    return mode == ExchangeMode::oidc ? "oidc" : "container-credentials";
}

// Static caller tokens are long-lived secrets: too short a one can be guessed.
constexpr std::size_t k_min_accepted_token_length = 32;

// Each accepted token file, read once now: one that is missing, empty or
// too short at startup is a configuration mistake, not a state to wait out.
std::vector<std::unique_ptr<TokenSource>> accepted_token_sources(const ServeSettings& settings)
{
    std::vector<std::unique_ptr<TokenSource>> sources;
    for (const auto& file : settings.accept_token_files) {
        auto source = std::make_unique<TokenSource>(
            file, real_clock(),
            TokenRules{.min_length = k_min_accepted_token_length, .accept_previous = false, .keep_last_good = false});
        if (source->reload() == TokenChange::unavailable) {
            // The problem says what is wrong (a missing file, the length, a
            // permission, with whom the file must be readable by).
            std::string hint;
            if (source->problem().starts_with("shorter than")) {
                hint = " (a static caller token must be long enough not to be guessed)";
            } else if (source->problem() == std::strerror(EACCES)) {
                hint = " (cwcreds runs as uid " + std::to_string(::getuid()) + ", gid " + std::to_string(::getgid()) +
                       ": the file must be readable by one of them (the pod's fsGroup or the Secret volume's "
                       "defaultMode))";
            }
            throw ConfigError{"--accept-token-file: " + file.string() + ": " + source->problem() + hint};
        }
        sources.push_back(std::move(source));
    }
    return sources;
}

// The server's size: loops from the CPUs this process may use, connection
// caps from the descriptors it may open.
void log_sizing(const ServeSettings& settings, const CpuBudget& cpus, const ServerSettings& server,
                std::uint64_t descriptor_limit, const ConnectionCaps& caps)
{
    log_event(spdlog::level::info, "server sized",
              {{"loops", server.loops},
               {"cpus_allowed", cpus.affinity_cpus},
               {"cpu_quota", cpus.quota_cpus ? std::to_string(*cpus.quota_cpus).substr(0, 4) : "none"},
               {"descriptor_limit", std::to_string(descriptor_limit)}});
    if (caps.lowered) {
        log_event(spdlog::level::warn, "--max-connections lowered to fit the descriptor limit",
                  {{"max_connections", static_cast<long>(caps.main)},
                   {"requested", static_cast<long>(settings.server.max_connections)},
                   {"probe_connections", static_cast<long>(caps.probes)},
                   {"imds_connections", static_cast<long>(caps.imds)},
                   {"descriptor_limit", std::to_string(descriptor_limit)}});
    }
}

void log_startup(const ServeSettings& settings, const ServerSettings& server, int port, int probe_port)
{
    log_event(
        spdlog::level::info, "cwcreds starting",
        {{"version", CWCREDS_VERSION},
         {"exchange", mode_name(settings.upstream.mode)},
         {"endpoint", settings.upstream.endpoint},
         {"token_file", settings.token_file.string()},
         {"client_token_file", settings.client_token_file.string()},
         // Requested only in oidc mode: container-credentials keys last what the endpoint says.
         {"duration", settings.upstream.mode == ExchangeMode::oidc
                          ? std::optional{std::chrono::duration_cast<std::chrono::seconds>(settings.upstream.duration)}
                          : std::nullopt},
         {"refresh_fraction", std::to_string(settings.refresh.refresh_fraction).substr(0, 4)},
         {"expiry_margin", settings.refresh.expiry_margin},
         {"retry",
          format_duration(settings.refresh.retry_initial) + ".." + format_duration(settings.refresh.retry_max)},
         {"token_poll", settings.token_poll},
         {"startup_gate", settings.server.startup_gate},
         {"max_connections", static_cast<long>(server.max_connections)}});
    for (const auto& file : settings.accept_token_files) {
        log_event(spdlog::level::info, "also accepting callers presenting a token file", {{"file", file.string()}});
    }
    if (settings.imds.enabled) {
        log_event(spdlog::level::warn,
                  "serving EC2 instance metadata (IMDSv2, --imds): any process in this pod that can send a PUT "
                  "gets credentials");
    }
    if (settings.server.allow_unauthenticated) {
        log_event(spdlog::level::warn, "serving callers without checking Authorization (--allow-unauthenticated)");
    }
    log_event(spdlog::level::info, "listening", {{"address", settings.server.host + ":" + std::to_string(port)}});
    if (probe_port != 0) {
        log_event(spdlog::level::info, "probes listening",
                  {{"probe_address", settings.server.probe_host + ":" + std::to_string(probe_port)},
                   {"paths", "/healthz /readyz /startupz /metrics"}});
    }
}

}  // namespace

int run_serve(const ServeSettings& settings)
{
    // 1. Signals become an event main waits for; threads inherit the mask.
    ShutdownSignal::block();

    // 1b. Size the server from what this process may use: descriptors (soft
    // limit raised to the hard one) and CPUs (affinity and cgroup quota).
    const std::uint64_t descriptor_limit = raise_descriptor_limit();
    const CpuBudget cpus = cpu_budget();
    const unsigned loops = std::min(cpus.usable, k_max_loops);
    ConnectionCaps wanted;
    wanted.main = settings.server.max_connections;
    wanted.probes = settings.server.probe_host.empty() ? 0 : k_probe_connections;
    wanted.imds = settings.imds.listen_host.empty() ? 0 : k_imds_connections;
    const std::size_t listeners = 1 + (wanted.probes > 0 ? 1 : 0) + (wanted.imds > 0 ? 1 : 0);
    const ConnectionCaps caps = fit_connection_caps(
        wanted, descriptor_limit, k_reserved_descriptors + listeners * (1 + k_descriptors_per_loop * loops));
    ServerSettings server_settings = settings.server;
    server_settings.max_connections = caps.main;
    server_settings.loops = loops;

    // 2. The token, and the caller token if it is a different file.
    TokenSource tokens{settings.token_file};
    std::unique_ptr<TokenSource> separate_client_tokens;
    if (!settings.client_token_file.empty() && settings.client_token_file != settings.token_file) {
        separate_client_tokens = std::make_unique<TokenSource>(settings.client_token_file);
    }
    TokenSource& client_tokens = separate_client_tokens ? *separate_client_tokens : tokens;
    const auto accepted = accepted_token_sources(settings);
    CallerOptions callers;
    for (const auto& source : accepted) {
        callers.accepted_tokens.push_back(source.get());
    }
    ImdsSessions imds_sessions;
    if (settings.imds.enabled) {
        callers.imds_sessions = &imds_sessions;
        callers.region = settings.imds.region;
    }

    // 3. The upstream client and the refresher that owns the credentials.
    const SystemTime started_at = std::chrono::system_clock::now();
    StartupGate startup_gate{settings.server.startup_gate, real_clock().steady_now()};
    Metrics metrics;
    const auto exchanger = make_exchange_client(settings.upstream);
    Refresher refresher{*exchanger, tokens, settings.refresh, metrics};
    tokens.set_listener([&refresher] { refresher.token_changed(); });

    // 4. The watcher re-reads tokens on directory events and on a timer.
    std::vector<TokenSource*> watched{&tokens};
    if (separate_client_tokens) {
        watched.push_back(separate_client_tokens.get());
    }
    watched.insert(watched.end(), callers.accepted_tokens.begin(), callers.accepted_tokens.end());
    TokenWatcher watcher{watched, settings.token_poll};

    // 5. Bind first, so a taken port fails before anything else starts.
    // /healthz fails once a loop has not gone round for longer than an exchange may take.
    const Millis allowance = stall_allowance(settings.upstream.exchange_timeout);
    const auto loops_alive = [&] {
        const auto now = std::chrono::steady_clock::now();
        return now - refresher.heartbeat() < allowance && now - watcher.heartbeat() < allowance;
    };
    const ServerContext context{refresher,         tokens,     client_tokens, metrics,
                                settings.upstream, started_at, loops_alive,   startup_gate};
    CredentialServer server{context, server_settings, Routes::all, callers};
    const int port = server.bind();
    std::unique_ptr<CredentialServer> imds_only;
    if (!settings.imds.listen_host.empty()) {
        ServerSettings imds_settings = server_settings;
        imds_settings.host = settings.imds.listen_host;
        imds_settings.port = settings.imds.listen_port;
        imds_settings.max_connections = caps.imds;
        imds_only = std::make_unique<CredentialServer>(context, imds_settings, Routes::imds_only, callers);
        const int imds_port = imds_only->bind();
        log_event(spdlog::level::info, "instance metadata only, on its own address",
                  {{"imds_at", imds_settings.host + ":" + std::to_string(imds_port)}});
    }
    std::unique_ptr<CredentialServer> probes;
    int probe_port = 0;
    if (!settings.server.probe_host.empty()) {
        ServerSettings probe_settings = server_settings;
        probe_settings.host = settings.server.probe_host;
        probe_settings.port = settings.server.probe_port;
        probe_settings.max_connections = caps.probes;
        // The callers too, though probes serve none: /metrics reports their
        // state (unreadable accepted token files), the same on both listeners.
        // Routes::probes_only keeps credentials, status and IMDS off this one.
        probes = std::make_unique<CredentialServer>(context, probe_settings, Routes::probes_only, callers);
        probe_port = probes->bind();
    }
    log_startup(settings, server_settings, port, probe_port);
    log_sizing(settings, cpus, server_settings, descriptor_limit, caps);

    refresher.set_listener([&server] { server.wake(); });

    // 6. Read the tokens once, then run every loop on its own thread.
    for (TokenSource* source : watched) {
        source->reload();
    }
    std::thread refresh_thread{[&] { refresher.run(); }};
    std::thread watch_thread{[&] { watcher.run(); }};
    std::thread serve_thread{[&] { server.run(); }};
    std::thread probe_thread;
    if (probes) {
        probe_thread = std::thread{[&] { probes->run(); }};
    }
    std::thread imds_thread;
    if (imds_only) {
        imds_thread = std::thread{[&] { imds_only->run(); }};
    }

    // 7. Wait for SIGTERM/SIGINT, then stop in reverse order.
    int signal_number = ShutdownSignal::wait();
    // Run as a plain container, the sidecar is signalled with the app, which
    // may still need keys while it finishes: serving goes on for the drain
    // delay (no preStop command needed: the image has no shell or sleep).
    if (settings.server.drain_delay > Millis{0}) {
        log_event(
            spdlog::level::info, "draining",
            {{"signal", signal_number}, {"serving_for", std::to_string(settings.server.drain_delay.count()) + "ms"}});
        if (const int again = ShutdownSignal::wait_for(settings.server.drain_delay); again != 0) {
            signal_number = again;
        }
    }
    log_event(spdlog::level::info, "shutting down", {{"signal", signal_number}});
    refresher.stop();
    watcher.stop();
    server.stop();
    if (probes) {
        probes->stop();
        probe_thread.join();
    }
    if (imds_only) {
        imds_only->stop();
        imds_thread.join();
    }
    refresh_thread.join();
    watch_thread.join();
    serve_thread.join();
    log_event(spdlog::level::info, "stopped");
    return 0;
}

}  // namespace cw

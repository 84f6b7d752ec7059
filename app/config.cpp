// The settings table and the parser built on it.
//
// Every setting is one row: flag, environment variable, default (as text, so
// it goes through the same parser as user input), value name, help line, and
// which subcommands read it. Cross-setting rules (loopback, org id, endpoint
// scheme) are checked once all rows are applied.
//
// Longer than 600 lines: everything that reads the table (parsing, help,
// suggestions, completion scripts, README) stays next to it, so no other
// file learns its layout.
#include "app/config.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <optional>
#include <vector>

#include <spdlog/fmt/fmt.h>

#include "common/placeholder.hpp"

#include "app/setting_values.hpp"
#include "common/duration.hpp"
#include "common/loopback.hpp"

namespace cw {

namespace {

constexpr unsigned k_serve = 1U << static_cast<unsigned>(Command::serve);
constexpr unsigned k_exchange = 1U << static_cast<unsigned>(Command::exchange);
constexpr unsigned k_credential_process = 1U << static_cast<unsigned>(Command::credential_process);
constexpr unsigned k_inspect = 1U << static_cast<unsigned>(Command::inspect);
constexpr unsigned k_upstream = k_serve | k_exchange | k_credential_process;
constexpr unsigned k_inject = 1U << static_cast<unsigned>(Command::inject);
constexpr unsigned k_webhook = 1U << static_cast<unsigned>(Command::webhook);
constexpr unsigned k_injecting = k_inject | k_webhook;

// CoreWeave's documented defaults: the endpoint reachable from anywhere (inside
// CKS http://cwlota.com is faster) and the region of its examples.
constexpr std::string_view k_default_s3_endpoint = "https://cwobject.com";
constexpr std::string_view k_default_s3_region = "US-EAST-04A";
// serve's default --listen: where the sidecar is when nothing says otherwise.
constexpr std::string_view k_default_sidecar_url = "http://127.0.0.1:9911";

struct Setting {
    std::string_view flag;
    std::string_view env;
    std::string_view default_value;  // empty: none
    std::string_view value_name;     // empty: a switch, `--flag` alone means true
    std::string_view help;
    unsigned commands;
    void (*apply)(Config&, std::string_view);
};

void apply_listen(Config& config, std::string_view text)
{
    auto [host, port] = host_port(text);
    config.sidecar.server.host = std::move(host);
    config.sidecar.server.port = port;
}

void apply_probe_listen(Config& config, std::string_view text)
{
    if (text.empty()) {
        config.sidecar.server.probe_host.clear();
        return;
    }
    auto [host, port] = host_port(text);
    config.sidecar.server.probe_host = std::move(host);
    config.sidecar.server.probe_port = port;
}

// Repeatable: each flag adds files; the variable (or one flag) may list several, comma-separated.
void apply_accept_token_files(Config& config, std::string_view text)
{
    std::size_t from = 0;
    while (from <= text.size()) {
        const std::size_t comma = std::min(text.find(',', from), text.size());
        const std::string_view path = text.substr(from, comma - from);
        if (path.empty()) {
            throw BadValue{"'" + std::string{text} + "' has an empty path (comma-separated paths expected)"};
        }
        config.sidecar.accept_token_files.emplace_back(std::string{path});
        from = comma + 1;
    }
}

void apply_imds_listen(Config& config, std::string_view text)
{
    if (text.empty()) {
        config.sidecar.imds.listen_host.clear();
        return;
    }
    auto [host, port] = host_port(text);
    if (!is_loopback_host(host)) {
        throw BadValue{"'" + host + "' is not a loopback address; instance metadata is served to this pod only"};
    }
    config.sidecar.imds.listen_host = std::move(host);
    config.sidecar.imds.listen_port = port;
}

void apply_log_level(Config& config, std::string_view text)
{
    if (text == "debug") {
        config.log_level = spdlog::level::debug;
    } else if (text == "info") {
        config.log_level = spdlog::level::info;
    } else if (text == "warn" || text == "warning") {
        config.log_level = spdlog::level::warn;
    } else if (text == "error") {
        config.log_level = spdlog::level::err;
    } else {
        throw BadValue{"'" + std::string{text} + "' is not one of debug, info, warn, error"};
    }
}

ExchangeMode exchange_mode(std::string_view text)
{
    if (text == "container-credentials") {
        return ExchangeMode::container_credentials;
    }
    if (text == "oidc") {
        return ExchangeMode::oidc;
    }
    throw BadValue{"'" + std::string{text} + "' is not container-credentials or oidc"};
}

Millis key_lifetime(std::string_view text)
{
    const Millis value = duration_value(text);
    if (value < std::chrono::seconds{1} || value > std::chrono::hours{12}) {
        throw BadValue{"'" + std::string{text} + "' is out of range: CoreWeave accepts 1s to 12h"};
    }
    return value;
}

void apply_log_format(Config& config, std::string_view text)
{
    if (text == "text") {
        config.log_format = LogFormat::text;
    } else if (text == "json") {
        config.log_format = LogFormat::json;
    } else {
        throw BadValue{"'" + std::string{text} + "' is not text or json"};
    }
}

// clang-format off
constexpr std::array k_settings{
    Setting{"--token-file", "CWCREDS_TOKEN_FILE", "/var/run/secrets/tokens/oidc-token", "PATH",
            "projected service-account token to exchange (the pod's projected token volume)", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.token_file = non_empty(v); }},
    Setting{"--token-file", "CWCREDS_TOKEN_FILE", "/var/run/secrets/tokens/oidc-token", "PATH",
            "projected service-account token to check", k_inspect,
            [](Config& c, std::string_view v) { c.inspect.token_file = non_empty(v); }},
    Setting{"--org-id", "CWCREDS_ORG_ID", "", "ID",
            "CoreWeave organization id; builds the endpoint URL (unless --endpoint), required with --exchange oidc",
            k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.org_id = v; }},
    Setting{"--org-id", "CWCREDS_ORG_ID", "", "ID",
            "CoreWeave organization id; only fills in the bucket-policy principal the report suggests", k_inspect,
            [](Config& c, std::string_view v) { c.inspect.org_id = v; }},
    Setting{"--org-id", "CWCREDS_ORG_ID", "", "ID",
            "organization id the injected sidecar exchanges for (a pod's cwcreds.coreweave.com/org-id annotation "
            "wins; else the org of a migrated AWS_CONTAINER_CREDENTIALS_FULL_URI)", k_injecting,
            [](Config& c, std::string_view v) { c.inject.mutation.org_id = v; }},
    Setting{"--endpoint", "CWCREDS_ENDPOINT", "", "URL",
            "full exchange URL (default: CoreWeave's for the mode); http:// only for loopback", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.endpoint = v; }},
    Setting{"--exchange", "CWCREDS_EXCHANGE", "container-credentials", "MODE",
            "container-credentials (GET, 15-minute keys) or oidc (POST, --duration keys)", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.mode = exchange_mode(v); }},
    Setting{"--exchange", "CWCREDS_EXCHANGE", "container-credentials", "MODE",
            "the injected sidecar's exchange: container-credentials (15-minute keys) or oidc (--duration keys); a "
            "pod's cwcreds.coreweave.com/exchange annotation wins", k_injecting,
            [](Config& c, std::string_view v) {
                (void)exchange_mode(v);
                c.inject.mutation.exchange = v;
            }},
    Setting{"--duration", "CWCREDS_DURATION", "1h", "DURATION",
            "key lifetime to request, 1s to 12h; only with --exchange oidc (container-credentials keys last 15 "
            "minutes, so giving --duration there is refused)", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.duration = key_lifetime(v); }},
    Setting{"--duration", "CWCREDS_DURATION", "1h", "DURATION",
            "the injected sidecar's key lifetime, 1s to 12h; only with --exchange oidc (refused otherwise); a pod's "
            "cwcreds.coreweave.com/duration annotation wins", k_injecting,
            [](Config& c, std::string_view v) { c.inject.mutation.duration = duration_text(key_lifetime(v)); }},
    Setting{"--ca-file", "CWCREDS_CA_FILE", "", "PATH",
            "CA bundle for the upstream TLS (default: the system trust store)", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.ca_file = v; }},
    Setting{"--connect-timeout", "CWCREDS_CONNECT_TIMEOUT", "2s", "DURATION",
            "upstream connect timeout", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.connect_timeout = positive_duration(v); }},
    Setting{"--exchange-timeout", "CWCREDS_EXCHANGE_TIMEOUT", "10s", "DURATION",
            "upstream total timeout per exchange", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.exchange_timeout = positive_duration(v); }},
    Setting{"--listen", "CWCREDS_LISTEN", "127.0.0.1:9911", "HOST:PORT",
            "where to serve; port 0 picks a free one; non-loopback needs --allow-non-loopback", k_serve,
            apply_listen},
    Setting{"--probe-listen", "CWCREDS_PROBE_LISTEN", "", "HOST:PORT",
            "also serve /healthz, /readyz, /startupz and /metrics (never credentials) here, e.g. 0.0.0.0:9912 for "
            "kubelet probes and Prometheus", k_serve, apply_probe_listen},
    Setting{"--allow-non-loopback", "CWCREDS_ALLOW_NON_LOOPBACK", "false", "",
            "allow --listen on a non-loopback address (credentials then cross the network unencrypted)", k_serve,
            [](Config& c, std::string_view v) { c.allow_non_loopback = switch_value(v); }},
    Setting{"--client-token-file", "CWCREDS_CLIENT_TOKEN_FILE", "", "PATH",
            "callers must send this file's content as Authorization (default: the --token-file)", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.client_token_file = v; }},
    Setting{"--accept-token-file", "CWCREDS_ACCEPT_TOKEN_FILE", "", "PATH",
            "repeatable (env: comma-separated): callers sending this file's content as Authorization are served "
            "too, for SDKs that read AWS_CONTAINER_AUTHORIZATION_TOKEN from the environment only; typically a "
            "mounted Secret, at least 32 characters", k_serve, apply_accept_token_files},
    Setting{"--imds", "CWCREDS_IMDS", "false", "",
            "also serve EC2 IMDSv2 (session tokens required, no v1) on the listener, for clients that only know "
            "instance metadata (AWS_EC2_METADATA_SERVICE_ENDPOINT); any process in the pod can then get "
            "credentials", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.imds.enabled = switch_value(v); }},
    Setting{"--imds-listen", "CWCREDS_IMDS_LISTEN", "", "HOST:PORT",
            "also serve IMDSv2, and only that, on this loopback address (e.g. 127.0.0.1:80 for SDKs that ignore "
            "the endpoint's port); implies --imds", k_serve, apply_imds_listen},
    Setting{"--region", "CWCREDS_REGION", "", "REGION",
            "with --imds: the region instance metadata reports (placement/region, instance-identity document)",
            k_serve, [](Config& c, std::string_view v) { c.sidecar.imds.region = v; }},
    Setting{"--allow-unauthenticated", "CWCREDS_ALLOW_UNAUTHENTICATED", "false", "",
            "serve callers without checking Authorization (logs a warning)", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.server.allow_unauthenticated = switch_value(v); }},
    Setting{"--refresh-fraction", "CWCREDS_REFRESH_FRACTION", "0.25", "F",
            "renew once this fraction of the lifetime has passed (0.25: served keys keep >= 75% left)", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.refresh.refresh_fraction = fraction_value(v, 0.01, 0.9); }},
    Setting{"--refresh-jitter", "CWCREDS_REFRESH_JITTER", "0.1", "F",
            "renew up to this fraction of the refresh point earlier, at random, so a fleet spreads out", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.refresh.refresh_jitter = fraction_value(v, 0, 0.5); }},
    Setting{"--expiry-margin", "CWCREDS_EXPIRY_MARGIN", "1m", "DURATION",
            "stop serving credentials this long before they expire (at most 10% of their lifetime)", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.refresh.expiry_margin = duration_value(v); }},
    Setting{"--retry-initial", "CWCREDS_RETRY_INITIAL", "1s", "DURATION",
            "first backoff after a failed exchange; doubles per failure, with jitter", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.refresh.retry_initial = positive_duration(v); }},
    Setting{"--retry-max", "CWCREDS_RETRY_MAX", "30s", "DURATION",
            "backoff cap; a rejected token waits 50-100% of this, at random, unless the token file rotates", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.refresh.retry_max = positive_duration(v); }},
    Setting{"--startup-wait", "CWCREDS_STARTUP_WAIT", "800ms", "DURATION",
            "how long a caller waits for the first exchange before 503 (SDKs give up after 1-2s)", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.server.startup_wait = duration_value(v); }},
    Setting{"--startup-gate", "CWCREDS_STARTUP_GATE", "2m", "DURATION",
            "how long after start /startupz (the startup probe) keeps the app waiting for credentials; then it "
            "lets the app start without them, so a token refused for good fails the app (and a Job's "
            "backoffLimit) instead of holding the pod in Init; 0s: never without credentials", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.server.startup_gate = duration_value(v); }},
    Setting{"--drain-delay", "CWCREDS_DRAIN_DELAY", "0s", "DURATION",
            "after SIGTERM, keep serving this long before stopping (a second signal stops at once): for a sidecar "
            "run as a plain container, which the kubelet signals together with the app", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.server.drain_delay = duration_value(v); }},
    Setting{"--token-poll", "CWCREDS_TOKEN_POLL", "30s", "DURATION",
            "re-read the token file this often even without a file event", k_serve,
            [](Config& c, std::string_view v) { c.sidecar.token_poll = positive_duration(v); }},
    Setting{"--max-connections", "CWCREDS_MAX_CONNECTIONS", "1024", "N",
            "client connections open at once; at the cap the one idle longest is closed to make room, else the one waiting longest on a half-sent request head, or the newcomer if every connection is owed an answer", k_serve,
            [](Config& c, std::string_view v) {
                c.sidecar.server.max_connections = count_value(v, 1, 65536);
            }},
    Setting{"--log-format", "CWCREDS_LOG_FORMAT", "text", "FORMAT",
            "log line format: text or json", k_serve | k_webhook, apply_log_format},
    Setting{"--log-level", "CWCREDS_LOG_LEVEL", "info", "LEVEL",
            "debug, info, warn or error", k_serve | k_webhook, apply_log_level},
    Setting{"--log-format", "CWCREDS_LOG_FORMAT", "text", "FORMAT",
            "format of the warnings and errors written to stderr (the credentials go to stdout): text or json",
            k_exchange | k_credential_process, apply_log_format},
    Setting{"--log-level", "CWCREDS_LOG_LEVEL", "warn", "LEVEL",
            "debug, info, warn or error; on stderr, never mixed with the credentials on stdout",
            k_exchange | k_credential_process, apply_log_level},
    Setting{"--audience", "CWCREDS_AUDIENCE", "https://coreweave.com/iam", "AUD",
            "the audience the token must carry", k_inspect,
            [](Config& c, std::string_view v) { c.inspect.audience = non_empty(v); }},
    Setting{"--sidecar", "CWCREDS_SIDECAR", "", "URL",
            "also check the running sidecar at this URL (e.g. http://127.0.0.1:9911); with --s3, get the keys there", k_inspect,
            [](Config& c, std::string_view v) { c.inspect.sidecar_url = v; }},
    Setting{"--json", "CWCREDS_JSON", "false", "",
            "print the report as JSON", k_inspect,
            [](Config& c, std::string_view v) { c.inspect.json_output = switch_value(v); }},
    Setting{"--s3", "CWCREDS_S3", "", "s3://BUCKET[/KEY]",
            "instead of the token checks: fetch the keys the sidecar serves (from --sidecar, else "
            "AWS_CONTAINER_CREDENTIALS_FULL_URI, else http://127.0.0.1:9911) and make one signed S3 request with "
            "them (list the bucket with max-keys=0, or read the object's first byte); the verdict names the cause "
            "of a failure: a bucket or organization policy, an unknown key, a wrong secret, the clock, a missing "
            "bucket or object, the endpoint", k_inspect,
            [](Config& c, std::string_view v) { c.inspect.s3_uri = v; }},
    Setting{"--s3-endpoint", "CWCREDS_S3_ENDPOINT", "", "URL",
            "with --s3: the S3 endpoint (default: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else "
            "https://cwobject.com; inside CKS CoreWeave recommends http://cwlota.com)", k_inspect,
            [](Config& c, std::string_view v) { c.inspect.s3_endpoint = v; }},
    Setting{"--s3-region", "CWCREDS_S3_REGION", "", "REGION",
            "with --s3: the region to sign for (default: AWS_REGION, else AWS_DEFAULT_REGION, else US-EAST-04A)",
            k_inspect, [](Config& c, std::string_view v) { c.inspect.s3_region = v; }},
    Setting{"--s3-addressing", "CWCREDS_S3_ADDRESSING", "virtual", "STYLE",
            "with --s3: virtual (BUCKET.endpoint, which CoreWeave requires) or path (endpoint/BUCKET, for "
            "S3-compatible stores that need it)", k_inspect,
            [](Config& c, std::string_view v) {
                if (v == "virtual") {
                    c.inspect.s3_addressing = S3Addressing::virtual_hosted;
                } else if (v == "path") {
                    c.inspect.s3_addressing = S3Addressing::path;
                } else {
                    throw BadValue{"'" + std::string{v} + "' is not virtual or path"};
                }
            }},
    Setting{"--ca-file", "CWCREDS_S3_CA_FILE", "", "PATH",
            "with --s3: CA bundle for the S3 endpoint's TLS (default: AWS_CA_BUNDLE, else the system trust store)",
            k_inspect, [](Config& c, std::string_view v) { c.inspect.s3_ca_file = v; }},
    Setting{"--image", "CWCREDS_IMAGE", "", "IMAGE",
            "required: the sidecar image to inject, with its registry (e.g. registry.example.com/cwcreds:"
            CWCREDS_VERSION "); a pod's cwcreds.coreweave.com/image annotation wins", k_injecting,
            [](Config& c, std::string_view v) { c.inject.mutation.image = non_empty(v); }},
    Setting{"-f", "CWCREDS_INJECT_FILE", "-", "FILE",
            "Kubernetes YAML or JSON to read; - for stdin", k_inject,
            [](Config& c, std::string_view v) { c.inject.input = non_empty(v); }},
    Setting{"--print-patch", "CWCREDS_PRINT_PATCH", "false", "",
            "print each object's JSON Patch (one JSON line per object) instead of the YAML", k_inject,
            [](Config& c, std::string_view v) { c.inject.print_patch = switch_value(v); }},
    Setting{"--remove", "CWCREDS_REMOVE", "false", "",
            "take cwcreds out of every pod it injected, restoring what it changed, instead of injecting", k_inject,
            [](Config& c, std::string_view v) { c.inject.remove = switch_value(v); }},
    Setting{"--listen", "CWCREDS_LISTEN", "0.0.0.0:8443", "HOST:PORT",
            "where the webhook serves HTTPS (the API server reaches it through its Service)", k_webhook,
            [](Config& c, std::string_view v) {
                auto [host, port] = host_port(v);
                c.webhook.host = std::move(host);
                c.webhook.port = port;
            }},
    Setting{"--tls-cert-file", "CWCREDS_TLS_CERT_FILE", "", "PATH",
            "serving certificate (PEM, chain first); re-read when it changes", k_webhook,
            [](Config& c, std::string_view v) { c.webhook.tls_cert_file = v; }},
    Setting{"--tls-key-file", "CWCREDS_TLS_KEY_FILE", "", "PATH",
            "its private key (PEM); re-read when it changes", k_webhook,
            [](Config& c, std::string_view v) { c.webhook.tls_key_file = v; }},
};
// clang-format on

bool applies_to(const Setting& setting, Command command)
{
    return (setting.commands & (1U << static_cast<unsigned>(command))) != 0;
}

constexpr std::array k_commands{Command::serve,   Command::exchange, Command::credential_process,
                                Command::inspect, Command::inject,   Command::webhook};

const Setting* find_flag(std::string_view flag, Command command)
{
    for (const auto& setting : k_settings) {
        if (setting.flag == flag && (setting.commands & (1U << static_cast<unsigned>(command))) != 0) {
            return &setting;
        }
    }
    return nullptr;
}

// Levenshtein distance, for "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b)
{
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The candidate nearest to `word`, if near enough to be a typo of it.
std::optional<std::string_view> nearest(std::string_view word, const std::vector<std::string_view>& candidates)
{
    const std::size_t limit = std::clamp<std::size_t>(word.size() / 3, 1, 3);
    std::optional<std::string_view> best;
    std::size_t best_distance = limit + 1;
    for (const auto candidate : candidates) {
        const std::size_t distance = edit_distance(word, candidate);
        if (distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

std::string unknown_flag_message(const std::string& flag, Command command)
{
    const unsigned bit = 1U << static_cast<unsigned>(command);
    std::string message = flag + ": unknown flag for 'cwcreds " + std::string{command_name(command)} + "'";
    std::vector<std::string_view> own;
    for (const auto& setting : k_settings) {
        if ((setting.commands & bit) != 0) {
            own.push_back(setting.flag);
        }
    }
    own.push_back("--help");
    if (const auto guess = nearest(flag, own)) {
        return message + "; did you mean " + std::string{*guess} + "?";
    }
    std::string others;
    for (const auto other : k_commands) {
        if (find_flag(flag, other) != nullptr) {
            others += (others.empty() ? "" : ", ") + std::string{command_name(other)};
        }
    }
    if (!others.empty()) {
        return message + " (it is a flag of " + others + ")";
    }
    return message + " (see cwcreds help " + std::string{command_name(command)} + ")";
}

void apply(const Setting& setting, std::string_view source, Config& config, std::string_view value)
{
    try {
        if (is_placeholder(value)) {
            throw BadValue{"'" + std::string{value} +
                           "' is a placeholder left from an example: put your own value there"};
        }
        setting.apply(config, value);
    } catch (const BadValue& bad) {
        throw ConfigError{std::string{source} + ": " + bad.message};
    }
}

// Scheme and host of a URL, enough to enforce the transport rules.
struct UrlParts {
    std::string scheme;
    std::string host;
};

std::optional<UrlParts> split_url(std::string_view url)
{
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view rest = url.substr(scheme_end + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
        rest = rest.substr(at + 1);
    }
    std::string_view host = rest;
    if (!rest.empty() && rest.front() == '[') {
        host = rest.substr(1, rest.find(']') == std::string_view::npos ? 0 : rest.find(']') - 1);
    } else if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
        host = rest.substr(0, colon);
    }
    if (host.empty()) {
        return std::nullopt;
    }
    return UrlParts{std::string{url.substr(0, scheme_end)}, std::string{host}};
}

// Unless `value` is set already: the first of the environment's `names` that
// is set and not empty, else `fallback`.
void fill(std::string& value, const EnvMap& env, std::initializer_list<std::string_view> names,
          std::string_view fallback)
{
    for (const auto name : names) {
        if (const auto it = env.find(name); value.empty() && it != env.end() && !it->second.empty()) {
            value = it->second;
        }
    }
    if (value.empty()) {
        value = fallback;
    }
}

// `inspect --s3` reads its keys and its S3 settings where an SDK in the
// app's container would: the AWS variables, below the flags and CWCREDS_*.
// Run in the sidecar's container (kubectl exec -c cwcreds), where none is
// set, it falls back to serve's default listener and the token file.
void resolve_s3(InspectSettings& inspect, const EnvMap& env)
{
    fill(inspect.s3_endpoint, env, {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}, k_default_s3_endpoint);
    fill(inspect.s3_region, env, {"AWS_REGION", "AWS_DEFAULT_REGION"}, k_default_s3_region);
    fill(inspect.s3_ca_file, env, {"AWS_CA_BUNDLE"}, "");
    inspect.credentials_url = inspect.sidecar_url;
    fill(inspect.credentials_url, env, {"AWS_CONTAINER_CREDENTIALS_FULL_URI"}, k_default_sidecar_url);
    fill(inspect.caller_token_file, env, {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"}, "");
    fill(inspect.caller_token, env, {"AWS_CONTAINER_AUTHORIZATION_TOKEN"}, "");
}

void validate_s3(const InspectSettings& inspect)
{
    const auto target = parse_s3_uri(inspect.s3_uri);
    if (const auto* problem = std::get_if<std::string>(&target)) {
        throw ConfigError{"--s3: " + *problem + " (example: s3://my-bucket or s3://my-bucket/path/to/object)"};
    }
    if (!s3_request_url(inspect.s3_endpoint, std::get<S3Target>(target), inspect.s3_addressing)) {
        throw ConfigError{"--s3-endpoint: '" + inspect.s3_endpoint +
                          "' is not an http(s) URL (example: https://cwobject.com)"};
    }
    // The keys come with the pod's token as Authorization: only from this pod's own sidecar.
    const auto url = split_url(inspect.credentials_url);
    const std::string source = inspect.sidecar_url.empty() ? "AWS_CONTAINER_CREDENTIALS_FULL_URI" : "--sidecar";
    if (!url || url->scheme != "http" || !is_loopback_host(url->host)) {
        throw ConfigError{source + ": '" + inspect.credentials_url +
                          "' is not a sidecar on loopback (http://127.0.0.1:PORT); inspect --s3 sends the pod's "
                          "token to it for the keys (give --sidecar)"};
    }
}

void validate(Config& config)
{
    // Without a registry the kubelet cannot pull the injected sidecar
    // (ImagePullBackOff): no default image, and --remove needs none.
    if ((config.command == Command::webhook || (config.command == Command::inject && !config.inject.remove)) &&
        config.inject.mutation.image.empty()) {
        throw ConfigError{
            "--image: required: the sidecar image to inject, with its registry (e.g. "
            "registry.example.com/cwcreds:" CWCREDS_VERSION "); env CWCREDS_IMAGE"};
    }
    if (config.command == Command::webhook) {
        if (config.webhook.tls_cert_file.empty() || config.webhook.tls_key_file.empty()) {
            throw ConfigError{
                "--tls-cert-file and --tls-key-file: both required (the API server calls webhooks over "
                "HTTPS only)"};
        }
        return;
    }
    if (config.command == Command::inject) {
        return;
    }
    if (config.command == Command::inspect) {
        if (!config.inspect.s3_uri.empty()) {
            validate_s3(config.inspect);
        }
        const auto url = split_url(config.inspect.sidecar_url);
        if (!config.inspect.sidecar_url.empty() && (!url || url->scheme != "http")) {
            throw ConfigError{"--sidecar: '" + config.inspect.sidecar_url +
                              "' is not an http:// URL (example: http://127.0.0.1:9911)"};
        }
        // The pod's token goes along as Authorization: only to this pod's own sidecar.
        if (!config.inspect.sidecar_url.empty() && !is_loopback_host(url->host)) {
            throw ConfigError{"--sidecar: " + url->host +
                              " is not a loopback host; inspect sends the pod's token to it (run inspect inside "
                              "the pod, e.g. kubectl exec POD -c cwcreds -- cwcreds inspect --sidecar "
                              "http://127.0.0.1:9911)"};
        }
        return;
    }
    auto& upstream = config.sidecar.upstream;
    if (upstream.mode == ExchangeMode::oidc && upstream.org_id.empty()) {
        throw ConfigError{"--org-id: required with --exchange oidc (it is sent in the request body)"};
    }
    if (upstream.endpoint.empty()) {
        if (upstream.org_id.empty()) {
            throw ConfigError{"--org-id: required (or give the full URL with --endpoint)"};
        }
        upstream.endpoint = default_endpoint(upstream.mode, upstream.org_id);
    }
    const auto url = split_url(upstream.endpoint);
    if (!url || (url->scheme != "https" && url->scheme != "http")) {
        throw ConfigError{"--endpoint: '" + upstream.endpoint + "' is not an http(s) URL"};
    }
    if (url->scheme == "http" && !is_loopback_host(url->host)) {
        throw ConfigError{
            "--endpoint: http:// is allowed only for loopback hosts; the token would cross the "
                          "network in clear text (use https://)"};
    }
    if (config.command != Command::serve) {
        return;
    }
    if (!config.allow_non_loopback && !is_loopback_host(config.sidecar.server.host)) {
        throw ConfigError{"--listen: " + config.sidecar.server.host +
                          " is not a loopback address; credentials would be served to the network "
                          "(add --allow-non-loopback if that is really wanted)"};
    }
    if (config.sidecar.client_token_file.empty()) {
        config.sidecar.client_token_file = config.sidecar.token_file;
    }
    if (!config.sidecar.imds.listen_host.empty()) {
        config.sidecar.imds.enabled = true;  // --imds-listen implies --imds
    }
    // Instance metadata asks the caller for no secret: off loopback it would
    // hand keys to anyone who can reach the port, whatever was allowed.
    if (config.sidecar.imds.enabled && !is_loopback_host(config.sidecar.server.host)) {
        throw ConfigError{
            "--imds: instance metadata asks callers for no token, so it is served on loopback only, "
            "and --listen " +
            config.sidecar.server.host + " is not loopback"};
    }
}

}  // namespace

std::string_view command_name(Command command)
{
    switch (command) {
        case Command::serve:
            return "serve";
        case Command::exchange:
            return "exchange";
        case Command::credential_process:
            return "credential-process";
        case Command::inspect:
            return "inspect";
        case Command::inject:
            return "inject";
        case Command::webhook:
            return "webhook";
    }
    return "serve";
}

Config parse_config(Command command, std::span<const std::string> args, const EnvMap& env)
{
    Config config;
    config.command = command;
    std::string duration_source;  // where an explicit --duration came from
    const unsigned bit = 1U << static_cast<unsigned>(command);
    // Defaults, then environment, then flags: later sources win.
    for (const auto& setting : k_settings) {
        if ((setting.commands & bit) != 0 && !setting.default_value.empty()) {
            apply(setting, setting.flag, config, setting.default_value);
        }
    }
    // A flag wins even over an invalid environment value: that value is never read.
    const auto given_as_flag = [&args](std::string_view flag) {
        return std::any_of(args.begin(), args.end(), [flag](const std::string& arg) {
            return arg == flag ||
                   (arg.size() > flag.size() && arg.compare(0, flag.size(), flag) == 0 && arg[flag.size()] == '=');
        });
    };
    for (const auto& setting : k_settings) {
        if ((setting.commands & bit) == 0 || given_as_flag(setting.flag)) {
            continue;
        }
        if (const auto it = env.find(setting.env); it != env.end()) {
            const std::string source = std::string{setting.env} + " (" + std::string{setting.flag} + ")";
            apply(setting, source, config, it->second);
            if (setting.flag == "--duration") {
                duration_source = source;
            }
        }
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--help" || arg == "-h") {
            config.show_help = true;
            return config;
        }
        const auto equals = arg.find('=');
        const std::string flag = arg.substr(0, equals);
        const Setting* setting = find_flag(flag, command);
        if (setting == nullptr) {
            if (arg.rfind("--", 0) == 0) {
                throw ConfigError{unknown_flag_message(flag, command)};
            }
            throw ConfigError{"'" + arg + "': unexpected argument (flags start with --; see --help)"};
        }
        if (flag == "--duration") {
            duration_source = flag;
        }
        if (equals != std::string::npos) {
            apply(*setting, flag, config, std::string_view{arg}.substr(equals + 1));
        } else if (setting->value_name.empty()) {
            apply(*setting, flag, config, "true");
        } else if (i + 1 < args.size()) {
            apply(*setting, flag, config, args[++i]);
        } else {
            throw ConfigError{flag + ": needs a value (" + std::string{setting->value_name} + ")"};
        }
    }
    if (command == Command::inspect && !config.inspect.s3_uri.empty()) {
        resolve_s3(config.inspect, env);
    }
    validate(config);
    // The container-credentials endpoint decides the lifetime (15 minutes): a
    // --duration asked for there would be logged and silently not honoured.
    const bool oidc = command == Command::inject || command == Command::webhook
                          ? config.inject.mutation.exchange == "oidc"
                          : config.sidecar.upstream.mode == ExchangeMode::oidc;
    if (!duration_source.empty() && !oidc && command != Command::inspect) {
        throw ConfigError{duration_source +
                          ": container-credentials keys always last 15 minutes; --duration applies only with "
                          "--exchange oidc"};
    }
    return config;
}

std::optional<Command> command_named(std::string_view name)
{
    for (const auto command : k_commands) {
        if (command_name(command) == name) {
            return command;
        }
    }
    return std::nullopt;
}

std::string unknown_command_message(std::string_view name)
{
    std::vector<std::string_view> names{"help", "completion", "version"};
    for (const auto command : k_commands) {
        names.push_back(command_name(command));
    }
    std::string message = "unknown command '" + std::string{name} + "'";
    if (const auto guess = nearest(name, names)) {
        message += "; did you mean " + std::string{*guess} + "?";
    }
    return message;
}

std::string help_text(Command command)
{
    const unsigned bit = 1U << static_cast<unsigned>(command);
    std::string text = "Usage: cwcreds " + std::string{command_name(command)} +
                       " [flags]\n\nFlags (each also read from its environment variable; the flag wins):\n";
    for (const auto& setting : k_settings) {
        if ((setting.commands & bit) == 0) {
            continue;
        }
        std::string left = "  " + std::string{setting.flag};
        if (!setting.value_name.empty()) {
            left += " " + std::string{setting.value_name};
        }
        text += left + "\n      " + std::string{setting.help} + "\n      env " + std::string{setting.env};
        if (!setting.default_value.empty() && !setting.value_name.empty()) {
            text += ", default " + std::string{setting.default_value};
        }
        text += "\n";
    }
    return text;
}

std::string overview_text()
{
    std::string text = R"(cwcreds: CoreWeave workload-identity credentials for AWS SDKs

Usage: cwcreds <command> [flags]

Commands:
  serve               run the sidecar: exchange the pod's token, serve S3 keys on 127.0.0.1
  exchange            one exchange now; print container-credentials JSON
  credential-process  one exchange now; print AWS credential_process JSON
  inspect             check the token file (and a running sidecar) for what breaks credentials
  inject              add cwcreds to every pod template of Kubernetes YAML (stdin or -f FILE)
  webhook             the mutating admission webhook: pods labelled cwcreds/inject: "true" get cwcreds
  completion          print a shell completion script: cwcreds completion bash|zsh
  help                this text; `cwcreds help <command>` for a command's flags

Most used flags (each also read from its CWCREDS_* variable):
)";
    // The few flags most users set; `cwcreds help <command>` has the rest.
    constexpr std::array<std::pair<std::string_view, std::string_view>, 5> k_most_used{{
        {"--org-id", "your CoreWeave organization id"},
        {"--token-file", "the projected service-account token"},
        {"--exchange", "container-credentials (15-minute keys) or oidc (--duration keys)"},
        {"--endpoint", "another exchange URL than CoreWeave's"},
        {"--image", "the sidecar image inject and webhook add (required there)"},
    }};
    for (const auto& [flag, meaning] : k_most_used) {
        std::string commands;
        std::string_view env;
        std::string_view value_name;
        for (const auto command : k_commands) {
            if (const Setting* setting = find_flag(flag, command)) {
                commands += (commands.empty() ? "" : ", ") + std::string{command_name(command)};
                env = setting->env;
                value_name = setting->value_name;
            }
        }
        text += fmt::format("  {:<20}{}\n                      env {}; {}\n",
                            std::string{flag} + " " + std::string{value_name}, meaning, env, commands);
    }
    text +=
        "\nRun `cwcreds help <command>` (or `cwcreds <command> --help`) for all of its flags.\n"
        "`cwcreds --version` prints the version.\n";
    return text;
}

// The values a completion offers after a flag taking this kind of value.
std::string_view value_choices(std::string_view value_name)
{
    if (value_name == "MODE") {
        return "container-credentials oidc";
    }
    if (value_name == "FORMAT") {
        return "text json";
    }
    if (value_name == "LEVEL") {
        return "debug info warn error";
    }
    return {};
}

std::string completion_script(std::string_view shell)
{
    std::string words = "serve exchange credential-process inspect inject webhook completion help";
    if (shell == "bash") {
        std::string values;
        std::vector<std::string_view> seen_values;
        for (const auto& setting : k_settings) {
            const auto choices = value_choices(setting.value_name);
            if (!choices.empty() &&
                std::find(seen_values.begin(), seen_values.end(), setting.flag) == seen_values.end()) {
                seen_values.push_back(setting.flag);
                values += fmt::format("        {}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return ;;\n",
                                      setting.flag, choices);
            }
        }
        std::string cases;
        for (const auto command : k_commands) {
            std::string flags = "--help";
            std::vector<std::string_view> seen;
            for (const auto& setting : k_settings) {
                if (applies_to(setting, command) && std::find(seen.begin(), seen.end(), setting.flag) == seen.end()) {
                    seen.push_back(setting.flag);
                    flags += " " + std::string{setting.flag};
                }
            }
            cases += fmt::format("        {}) flags=\"{}\" ;;\n", command_name(command), flags);
        }
        return fmt::format(R"(# bash completion for cwcreds: source <(cwcreds completion bash)
_cwcreds() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}} flags
    case $prev in
{2}    esac
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{0} --help --version" -- "$cur"))
        return
    fi
    case ${{COMP_WORDS[1]}} in
{1}        help) flags="{0}" ;;
        completion) flags="bash zsh" ;;
        *) return ;;
    esac
    if [[ ${{COMP_WORDS[1]}} == help || ${{COMP_WORDS[1]}} == completion || $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _cwcreds cwcreds
)",
                           words, cases, values);
    }
    if (shell == "zsh") {
        std::string cases;
        for (const auto command : k_commands) {
            std::string specs;
            std::vector<std::string_view> seen;
            for (const auto& setting : k_settings) {
                if (!applies_to(setting, command) || std::find(seen.begin(), seen.end(), setting.flag) != seen.end()) {
                    continue;
                }
                seen.push_back(setting.flag);
                std::string help{setting.help.substr(0, setting.help.find(';'))};
                for (std::size_t pos = 0; (pos = help.find_first_of("[]:'\\", pos)) != std::string::npos;) {
                    help.erase(pos, 1);
                }
                // _arguments' "message:action": no colon in the message; files
                // for paths, the choices where there are some, else nothing to offer.
                std::string value_name{setting.value_name};
                std::replace(value_name.begin(), value_name.end(), ':', ' ');
                const std::string_view choices = value_choices(setting.value_name);
                const std::string action = setting.value_name == "PATH" || setting.value_name == "FILE" ? "_files"
                                           : choices.empty()                                            ? " "
                                                             : "(" + std::string{choices} + ")";
                while (!help.empty() && help.back() == ' ') {
                    help.pop_back();
                }
                specs += fmt::format(" \\\n                '{}[{}]{}'", setting.flag, help,
                                     setting.value_name.empty() ? "" : ":" + value_name + ":" + action);
            }
            cases +=
                fmt::format("        {}) _arguments '--help[show the flags]'{} ;;\n", command_name(command), specs);
        }
        return fmt::format(R"(#compdef cwcreds
# zsh completion for cwcreds: source <(cwcreds completion zsh)
_cwcreds() {{
    if (( CURRENT == 2 )); then
        compadd -- {0} --help --version
        return
    fi
    case $words[2] in
{1}        help) compadd -- {0} ;;
        completion) compadd -- bash zsh ;;
    esac
}}
if (( $+functions[compdef] )); then compdef _cwcreds cwcreds; fi
)",
                           words, cases);
    }
    return {};
}

std::string settings_markdown(Command command)
{
    const unsigned bit = 1U << static_cast<unsigned>(command);
    std::string text = "| flag | env | default | meaning |\n|---|---|---|---|\n";
    for (const auto& setting : k_settings) {
        if ((setting.commands & bit) == 0) {
            continue;
        }
        std::string flag = "`" + std::string{setting.flag};
        flag += setting.value_name.empty() ? "`" : " " + std::string{setting.value_name} + "`";
        const std::string default_value =
            setting.default_value.empty() ? "—" : "`" + std::string{setting.default_value} + "`";
        std::string help{setting.help};
        for (std::size_t pos = help.find('|'); pos != std::string::npos; pos = help.find('|', pos + 2)) {
            help.replace(pos, 1, "\\|");
        }
        text += "| " + flag + " | `" + std::string{setting.env} + "` | " + default_value + " | " + help + " |\n";
    }
    return text;
}

}  // namespace cw

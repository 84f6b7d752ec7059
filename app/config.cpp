// The settings table and the parser built on it.
//
// Every setting is one row: flag, environment variable, default (as text, so
// it goes through the same parser as user input), value name, help line, and
// which subcommands read it. Cross-setting rules (loopback, org id, endpoint
// scheme) are checked once all rows are applied.
#include "app/config.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <optional>

#include <spdlog/fmt/fmt.h>

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

// clang-format off
constexpr std::array k_settings{
    Setting{"--token-file", "CWCREDS_TOKEN_FILE", "/var/run/secrets/tokens/oidc-token", "PATH",
            "projected service-account token to exchange", k_upstream | k_inspect,
            [](Config& c, std::string_view v) {
                c.sidecar.token_file = non_empty(v);
                c.inspect.token_file = c.sidecar.token_file;
            }},
    Setting{"--org-id", "CWCREDS_ORG_ID", "", "ID",
            "CoreWeave organization id; builds the endpoint URL, required in oidc mode", k_upstream | k_inspect | k_injecting,
            [](Config& c, std::string_view v) {
                c.sidecar.upstream.org_id = v;
                c.inspect.org_id = v;
                c.inject.mutation.org_id = v;
            }},
    Setting{"--endpoint", "CWCREDS_ENDPOINT", "", "URL",
            "full exchange URL (default: CoreWeave's for the mode); http:// only for loopback", k_upstream,
            [](Config& c, std::string_view v) { c.sidecar.upstream.endpoint = v; }},
    Setting{"--exchange", "CWCREDS_EXCHANGE", "container-credentials", "MODE",
            "container-credentials (GET, 15-minute keys) or oidc (POST, --duration keys)", k_upstream | k_injecting,
            [](Config& c, std::string_view v) {
                c.inject.mutation.exchange = v;
                if (v == "container-credentials") {
                    c.sidecar.upstream.mode = ExchangeMode::container_credentials;
                } else if (v == "oidc") {
                    c.sidecar.upstream.mode = ExchangeMode::oidc;
                } else {
                    throw BadValue{"'" + std::string{v} + "' is not container-credentials or oidc"};
                }
            }},
    Setting{"--duration", "CWCREDS_DURATION", "1h", "DURATION",
            "requested key lifetime in oidc mode, 1s to 12h", k_upstream | k_injecting,
            [](Config& c, std::string_view v) {
                const Millis value = duration_value(v);
                if (value < std::chrono::seconds{1} || value > std::chrono::hours{12}) {
                    throw BadValue{"'" + std::string{v} + "' is out of range: CoreWeave accepts 1s to 12h"};
                }
                c.sidecar.upstream.duration = value;
                c.inject.mutation.duration = duration_text(value);
            }},
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
            "log line format: text or json", k_upstream | k_inspect | k_webhook,
            [](Config& c, std::string_view v) {
                if (v == "text") {
                    c.log_format = LogFormat::text;
                } else if (v == "json") {
                    c.log_format = LogFormat::json;
                } else {
                    throw BadValue{"'" + std::string{v} + "' is not text or json"};
                }
            }},
    Setting{"--log-level", "CWCREDS_LOG_LEVEL", "info", "LEVEL",
            "debug, info, warn or error", k_upstream | k_inspect | k_webhook, apply_log_level},
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
    Setting{"--image", "CWCREDS_IMAGE", "cwcreds:" CWCREDS_VERSION, "IMAGE",
            "the sidecar image to inject (a pod's cwcreds.coreweave.com/image annotation wins)", k_injecting,
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

const Setting* find_flag(std::string_view flag, Command command)
{
    for (const auto& setting : k_settings) {
        if (setting.flag == flag && (setting.commands & (1U << static_cast<unsigned>(command))) != 0) {
            return &setting;
        }
    }
    return nullptr;
}

void apply(const Setting& setting, std::string_view source, Config& config, std::string_view value)
{
    try {
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
            apply(setting, std::string{setting.env} + " (" + std::string{setting.flag} + ")", config, it->second);
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
                throw ConfigError{flag + ": unknown flag for 'cwcreds " + std::string{command_name(command)} +
                                  "' (see --help)"};
            }
            throw ConfigError{"'" + arg + "': unexpected argument (flags start with --; see --help)"};
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
    return config;
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

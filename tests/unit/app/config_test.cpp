#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "app/config.hpp"

namespace {

cw::Config parse(std::vector<std::string> args, cw::EnvMap env = {}, cw::Command command = cw::Command::serve)
{
    return cw::parse_config(command, args, env);
}

// The message of the ConfigError that `args` cause.
std::string error_of(std::vector<std::string> args, cw::EnvMap env = {})
{
    try {
        (void)parse(std::move(args), std::move(env));
    } catch (const cw::ConfigError& error) {
        return error.what();
    }
    return "no error";
}

}  // namespace

TEST_SUITE("sidecar::config")
{
    TEST_CASE("defaults follow the interface contract")
    {
        const auto config = parse({"--org-id", "my-org"});
        CHECK(config.sidecar.token_file == "/var/run/secrets/tokens/oidc-token");
        CHECK(config.sidecar.client_token_file == config.sidecar.token_file);
        CHECK(config.sidecar.upstream.mode == cw::ExchangeMode::container_credentials);
        CHECK(config.sidecar.upstream.endpoint == "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc/my-org");
        CHECK(config.sidecar.server.host == "127.0.0.1");
        CHECK(config.sidecar.server.port == 9911);
        CHECK(config.sidecar.upstream.duration == std::chrono::hours{1});
        CHECK_FALSE(config.sidecar.server.allow_unauthenticated);
        CHECK(config.log_format == cw::LogFormat::text);
        CHECK(config.log_level == spdlog::level::info);
        CHECK(config.sidecar.server.startup_wait < std::chrono::seconds{1});
    }

    TEST_CASE("the startup gate defaults to 2m, reads flag or environment, and 0s keeps it shut")
    {
        CHECK(parse({"--org-id", "o"}).sidecar.server.startup_gate == std::chrono::minutes{2});
        CHECK(parse({"--org-id", "o", "--startup-gate", "30s"}).sidecar.server.startup_gate ==
              std::chrono::seconds{30});
        CHECK(parse({"--org-id", "o"}, {{"CWCREDS_STARTUP_GATE", "5m"}}).sidecar.server.startup_gate ==
              std::chrono::minutes{5});
        CHECK(parse({"--org-id", "o", "--startup-gate", "0s"}).sidecar.server.startup_gate == cw::Millis{0});
        CHECK(error_of({"--org-id", "o", "--startup-gate", "soon"}).find("--startup-gate: 'soon' is not a duration") ==
              0);
        CHECK(error_of({"--org-id", "o"}, {{"CWCREDS_STARTUP_GATE", "-1s"}}).find("CWCREDS_STARTUP_GATE") == 0);
    }

    TEST_CASE("oidc mode posts to the endpoint without the org id in the path")
    {
        const auto config = parse({"--exchange", "oidc", "--org-id", "my-org", "--duration", "2h"});
        CHECK(config.sidecar.upstream.endpoint == "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc");
        CHECK(config.sidecar.upstream.duration == std::chrono::hours{2});
    }

    TEST_CASE("the renewal and retry flags reach the refresher, from flags or the environment")
    {
        const auto flags = parse({"--org-id", "o", "--refresh-fraction", "0.4", "--refresh-jitter", "0.2",
                                  "--expiry-margin", "90s", "--retry-initial", "250ms", "--retry-max", "2m"});
        CHECK(flags.sidecar.refresh.refresh_fraction == doctest::Approx(0.4));
        CHECK(flags.sidecar.refresh.refresh_jitter == doctest::Approx(0.2));
        CHECK(flags.sidecar.refresh.expiry_margin == std::chrono::seconds{90});
        CHECK(flags.sidecar.refresh.retry_initial == std::chrono::milliseconds{250});
        CHECK(flags.sidecar.refresh.retry_max == std::chrono::minutes{2});

        const auto env = parse({"--org-id", "o"}, {{"CWCREDS_REFRESH_FRACTION", "0.6"}});
        CHECK(env.sidecar.refresh.refresh_fraction == doctest::Approx(0.6));
    }

    TEST_CASE("environment variables are read and flags win over them")
    {
        const cw::EnvMap env{{"CWCREDS_ORG_ID", "env-org"},
                             {"CWCREDS_LISTEN", "127.0.0.1:7000"},
                             {"CWCREDS_ALLOW_UNAUTHENTICATED", "true"},
                             {"CWCREDS_LOG_FORMAT", "json"}};
        const auto from_env = parse({}, env);
        CHECK(from_env.sidecar.upstream.org_id == "env-org");
        CHECK(from_env.sidecar.server.port == 7000);
        CHECK(from_env.sidecar.server.allow_unauthenticated);
        CHECK(from_env.log_format == cw::LogFormat::json);
        const auto flag_wins = parse({"--listen", "127.0.0.1:7001", "--org-id=flag-org"}, env);
        CHECK(flag_wins.sidecar.server.port == 7001);
        CHECK(flag_wins.sidecar.upstream.org_id == "flag-org");
    }

    TEST_CASE("every bad value names the flag that carries it")
    {
        CHECK(error_of({"--org-id", "o", "--nope"}).find("--nope: unknown flag") == 0);
        CHECK(error_of({"--org-id", "o", "--retry-max", "5x"}).find("--retry-max: '5x' is not a duration") == 0);
        CHECK(error_of({"--org-id", "o", "--listen", "nohost"}).find("--listen:") == 0);
        CHECK(error_of({"--org-id", "o", "--listen", "127.0.0.1:99999"}).find("--listen:") == 0);
        CHECK(
            error_of({"--endpoint", "http://example.com/x"}).find("--endpoint: http:// is allowed only for loopback") ==
            0);
        CHECK(error_of({"--org-id", "o", "--listen", "0.0.0.0:9911"}).find("--listen: 0.0.0.0 is not a loopback") == 0);
        CHECK(error_of({}).find("--org-id: required") == 0);
        CHECK(error_of({"--exchange", "oidc", "--endpoint", "https://x/y"})
                  .find("--org-id: required with --exchange oidc") == 0);
        CHECK(error_of({"--org-id", "o", "--duration", "13h"}).find("--duration: '13h' is out of range") == 0);
        CHECK(error_of({"--org-id", "o", "--exchange", "sts"}).find("--exchange:") == 0);
        CHECK(error_of({"--org-id", "o", "--log-level", "loud"}).find("--log-level:") == 0);
        CHECK(error_of({"--org-id", "o", "--token-file"}).find("--token-file: needs a value") == 0);
        CHECK(error_of({"--org-id", "o", "stray"}).find("'stray': unexpected argument") == 0);
        CHECK(error_of({"--org-id", "o", "--refresh-fraction", "nan"})
                  .find("--refresh-fraction: 'nan' is not a number") == 0);
        CHECK(error_of({"--org-id", "o", "--refresh-jitter", "inf"}).find("--refresh-jitter:") == 0);
    }

    TEST_CASE("a bad environment value names the variable and its flag")
    {
        CHECK(error_of({"--org-id", "o"}, {{"CWCREDS_RETRY_MAX", "5x"}}).find("CWCREDS_RETRY_MAX (--retry-max):") == 0);
    }

    TEST_CASE("http:// endpoints and non-loopback listening are allowed where safe or asked for")
    {
        CHECK(parse({"--endpoint", "http://127.0.0.1:8080/x"}).sidecar.upstream.endpoint == "http://127.0.0.1:8080/x");
        CHECK(parse({"--endpoint", "http://localhost/x"}).sidecar.upstream.endpoint == "http://localhost/x");
        CHECK(parse({"--org-id", "o", "--listen", "0.0.0.0:9911", "--allow-non-loopback"}).sidecar.server.host == "0.0.0.0");
        CHECK(parse({"--org-id", "o", "--listen", "[::1]:9911"}).sidecar.server.host == "::1");
    }

    TEST_CASE("inspect sends the pod token only to a sidecar on loopback")
    {
        const auto inspect = [](std::string url) {
            return parse({"--sidecar", std::move(url)}, {}, cw::Command::inspect).inspect.sidecar_url;
        };
        CHECK(inspect("http://127.0.0.1:9911") == "http://127.0.0.1:9911");
        CHECK(inspect("http://localhost:9911") == "http://localhost:9911");
        CHECK(inspect("http://[::1]:9911") == "http://[::1]:9911");
        for (const std::string url : {"http://10.0.0.7:9911", "http://sidecar.example.com:9911",
                                      "http://127.0.0.1:9911@evil.example.com", "http://127.0.0.1.evil.example.com/"}) {
            CAPTURE(url);
            try {
                (void)inspect(url);
                FAIL("accepted");
            } catch (const cw::ConfigError& error) {
                CHECK(std::string{error.what()}.find("not a loopback host") != std::string::npos);
            }
        }
    }

    TEST_CASE("inspect --s3 reads what an SDK reads, below its own flags, then CoreWeave's defaults")
    {
        const auto inspect = [](std::vector<std::string> args, cw::EnvMap env = {}) {
            args.insert(args.begin(), {"--s3", "s3://my-bucket"});
            return parse(std::move(args), std::move(env), cw::Command::inspect).inspect;
        };
        const auto defaults = inspect({});
        CHECK(defaults.s3_endpoint == "https://cwobject.com");
        CHECK(defaults.s3_region == "US-EAST-04A");
        CHECK(defaults.s3_addressing == cw::S3Addressing::virtual_hosted);
        CHECK(defaults.credentials_url == "http://127.0.0.1:9911");
        CHECK(defaults.s3_ca_file.empty());
        CHECK(defaults.caller_token_file.empty());

        const cw::EnvMap sdk{{"AWS_ENDPOINT_URL", "http://cwlota.com"},
                             {"AWS_DEFAULT_REGION", "US-WEST-01A"},
                             {"AWS_CA_BUNDLE", "/etc/ca.pem"},
                             {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9920/v1/credentials"},
                             {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/cwcreds/token"}};
        const auto from_sdk = inspect({}, sdk);
        CHECK(from_sdk.s3_endpoint == "http://cwlota.com");
        CHECK(from_sdk.s3_region == "US-WEST-01A");
        CHECK(from_sdk.s3_ca_file == "/etc/ca.pem");
        CHECK(from_sdk.credentials_url == "http://127.0.0.1:9920/v1/credentials");
        CHECK(from_sdk.caller_token_file == "/var/run/secrets/cwcreds/token");

        auto more_specific = sdk;
        more_specific["AWS_ENDPOINT_URL_S3"] = "https://cwobject.com";
        more_specific["AWS_REGION"] = "US-EAST-01A";
        CHECK(inspect({}, more_specific).s3_endpoint == "https://cwobject.com");
        CHECK(inspect({}, more_specific).s3_region == "US-EAST-01A");

        const auto flags = inspect({"--s3-endpoint", "http://localhost:9000", "--s3-region", "r", "--s3-addressing",
                                    "path", "--sidecar", "http://127.0.0.1:9930", "--ca-file", "/ca"},
                                   sdk);
        CHECK(flags.s3_endpoint == "http://localhost:9000");
        CHECK(flags.s3_region == "r");
        CHECK(flags.s3_addressing == cw::S3Addressing::path);
        CHECK(flags.credentials_url == "http://127.0.0.1:9930");
        CHECK(flags.s3_ca_file == "/ca");
    }

    TEST_CASE("inspect --s3 refuses a bad URI or endpoint, and keys from anywhere but loopback")
    {
        const auto error = [](std::vector<std::string> args, cw::EnvMap env = {}) -> std::string {
            try {
                (void)parse(std::move(args), std::move(env), cw::Command::inspect);
            } catch (const cw::ConfigError& e) {
                return e.what();
            }
            return "no error";
        };
        CHECK(error({"--s3", "my-bucket"}).find("--s3: 'my-bucket' is not an s3://BUCKET[/KEY] URI") == 0);
        CHECK(error({"--s3", "s3://b"}).find("--s3: 'b' is not a bucket name") == 0);
        CHECK(error({"--s3", "s3://bucket", "--s3-endpoint", "cwobject.com"}).find("--s3-endpoint:") == 0);
        CHECK(error({"--s3", "s3://bucket", "--s3-addressing", "dns"}).find("--s3-addressing:") == 0);
        CHECK(error({"--s3", "s3://bucket"}, {{"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                               "https://api.coreweave.com/v1/cwobject/temporary-credentials/oidc/org"}})
                  .find("AWS_CONTAINER_CREDENTIALS_FULL_URI: ") == 0);
        CHECK(error({"--s3", "s3://bucket", "--sidecar", "http://10.0.0.7:9911"}).find("--sidecar") == 0);
    }

    TEST_CASE("one-shot commands take upstream flags but not serving ones")
    {
        const auto config = parse({"--org-id", "o", "--ca-file", "/ca.pem"}, {}, cw::Command::credential_process);
        CHECK(config.sidecar.upstream.ca_file == "/ca.pem");
        CHECK_THROWS_AS(parse({"--org-id", "o", "--listen", "127.0.0.1:1"}, {}, cw::Command::exchange),
                        cw::ConfigError);
    }

    TEST_CASE("--help lists every flag with its environment variable")
    {
        const std::string help = cw::help_text(cw::Command::serve);
        for (const char* name :
             {"--token-file", "CWCREDS_TOKEN_FILE", "--org-id", "--endpoint", "--exchange", "--duration", "--ca-file",
              "--listen", "--client-token-file", "--allow-unauthenticated", "--log-format", "--log-level",
              "--refresh-fraction", "--retry-max", "--startup-wait", "--startup-gate", "CWCREDS_STARTUP_GATE"}) {
            CAPTURE(name);
            CHECK(help.find(name) != std::string::npos);
        }
        CHECK(parse({"--help"}).show_help);
    }

    TEST_CASE("accepted token files repeat as flags or come comma-separated from the environment")
    {
        CHECK(parse({"--org-id", "o", "--accept-token-file", "/a", "--accept-token-file=/b"}).sidecar.accept_token_files ==
              std::vector<std::filesystem::path>{"/a", "/b"});
        CHECK(parse({"--org-id", "o"}, {{"CWCREDS_ACCEPT_TOKEN_FILE", "/a,/b"}}).sidecar.accept_token_files ==
              std::vector<std::filesystem::path>{"/a", "/b"});
        CHECK(parse({"--org-id", "o", "--accept-token-file", "/c"}, {{"CWCREDS_ACCEPT_TOKEN_FILE", "/a,/b"}})
                  .sidecar.accept_token_files == std::vector<std::filesystem::path>{"/c"});
        CHECK(parse({"--org-id", "o"}).sidecar.accept_token_files.empty());
        CHECK(error_of({"--org-id", "o", "--accept-token-file", "/a,,/b"}).find("--accept-token-file") == 0);
    }

    TEST_CASE("--imds-listen implies --imds and must be loopback")
    {
        CHECK_FALSE(parse({"--org-id", "o"}).sidecar.imds.enabled);
        CHECK(parse({"--org-id", "o", "--imds"}).sidecar.imds.enabled);
        const auto config = parse({"--org-id", "o"}, {{"CWCREDS_IMDS_LISTEN", "127.0.0.1:80"}});
        CHECK(config.sidecar.imds.enabled);
        CHECK(config.sidecar.imds.listen_host == "127.0.0.1");
        CHECK(config.sidecar.imds.listen_port == 80);
        CHECK(error_of({"--org-id", "o", "--imds-listen", "0.0.0.0:80"}).find("--imds-listen: '0.0.0.0'") == 0);
    }

    TEST_CASE("instance metadata is never served off loopback, even where non-loopback listening is allowed")
    {
        CHECK(
            error_of({"--org-id", "o", "--listen", "0.0.0.0:9911", "--allow-non-loopback", "--imds"}).find("--imds:") ==
            0);
        CHECK(error_of({"--org-id", "o", "--listen", "10.0.0.5:9911", "--allow-non-loopback", "--imds-listen",
                        "127.0.0.1:80"})
                  .find("--imds:") == 0);
        CHECK_FALSE(parse({"--org-id", "o", "--listen", "0.0.0.0:9911", "--allow-non-loopback"}).sidecar.imds.enabled);
    }

    // The flag table the README links to lives in docs/reference.md; the case
    // keeps its README name so the documented update command still selects it.
    // CWCREDS_UPDATE_README=1 rewrites the block between the markers instead.
    TEST_CASE("README's flag reference in docs/reference.md is the settings table")
    {
        const std::string path = CWCREDS_SOURCE_DIR "/docs/reference.md";
        std::stringstream text;
        {
            std::ifstream readme{path};
            REQUIRE(readme);
            text << readme.rdbuf();
        }
        std::string content = text.str();
        const std::string expected = cw::settings_markdown(cw::Command::serve);
        const std::string begin = "<!-- settings:serve -->\n";
        const std::string end = "<!-- /settings:serve -->";
        const auto from = content.find(begin);
        auto to = content.find(end);
        REQUIRE(from != std::string::npos);
        REQUIRE(to != std::string::npos);
        if (std::getenv("CWCREDS_UPDATE_README") != nullptr) {
            content.replace(from + begin.size(), to - from - begin.size(), expected);
            std::ofstream{path, std::ios::trunc} << content;
            to = content.find(end);
        }
        CHECK_MESSAGE(content.substr(from + begin.size(), to - from - begin.size()) == expected,
                      "docs/reference.md is out of date: run CWCREDS_UPDATE_README=1 unit_tests -tc='README*'");
    }

    TEST_CASE("inject and webhook: the injected sidecar's defaults, the webhook's listener and TLS files")
    {
        const auto inject = parse({"--org-id", "acme", "-f", "in.yaml", "--exchange", "oidc", "--duration", "4h",
                                   "--image", "registry.example.com/cwcreds:1"},
                                  {}, cw::Command::inject);
        CHECK(inject.inject.input == "in.yaml");
        CHECK(inject.inject.mutation.image == "registry.example.com/cwcreds:1");
        CHECK(inject.inject.mutation.exchange == "oidc");
        CHECK(inject.inject.mutation.duration == "4h");
        CHECK(inject.inject.mutation.org_id == "acme");
        // stdin; no org id needed up front
        CHECK(parse({"--image", "r.example/cwcreds:1"}, {}, cw::Command::inject).inject.input == "-");

        const auto webhook = parse({"--tls-cert-file", "/tls/tls.crt", "--tls-key-file", "/tls/tls.key"},
                                   {{"CWCREDS_IMAGE", "registry.example.com/cwcreds:1"}}, cw::Command::webhook);
        CHECK(webhook.webhook.host == "0.0.0.0");
        CHECK(webhook.webhook.port == 8443);
        CHECK(webhook.inject.mutation.image == "registry.example.com/cwcreds:1");
        CHECK_THROWS_WITH_AS(
            parse({"--tls-cert-file", "/tls/tls.crt", "--image", "r.example/cwcreds:1"}, {}, cw::Command::webhook),
            "--tls-cert-file and --tls-key-file: both required (the API server calls webhooks over "
            "HTTPS only)",
            cw::ConfigError);
        // serve's --listen default is not the webhook's, and serve has no --image.
        CHECK(parse({"--org-id", "o"}).sidecar.server.port == 9911);
        CHECK_THROWS_AS(parse({"--org-id", "o", "--image", "x"}), cw::ConfigError);
    }
}

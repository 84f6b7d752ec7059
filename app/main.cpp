// cwcreds: serves CoreWeave AI Object Storage credentials to AWS SDKs.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "common/core_dumps.hpp"
#include "common/logging.hpp"
#include "app/commands.hpp"
#include "app/config.hpp"

extern char** environ;

namespace {

constexpr const char* k_usage = R"(cwcreds — CoreWeave workload-identity credentials for AWS SDKs

Usage: cwcreds <command> [flags]

Commands:
  serve               run the sidecar: exchange the pod's token, serve S3 keys on 127.0.0.1
  exchange            one exchange now; print container-credentials JSON
  credential-process  one exchange now; print AWS credential_process JSON
  inspect             check the token file (and a running sidecar) for what breaks credentials;
                      with --s3 s3://BUCKET, make one signed S3 request with the served keys
  inject              add cwcreds to every pod template of Kubernetes YAML (stdin or -f FILE)
  webhook             the mutating admission webhook: pods labelled cwcreds/inject: "true" get cwcreds
  help                this text

Run `cwcreds <command> --help` for its flags. `cwcreds --version` prints the version.
)";

cw::EnvMap environment()
{
    cw::EnvMap env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const char* equals = std::strchr(*entry, '=');
        if (equals == nullptr) {
            continue;
        }
        const std::string name(*entry, static_cast<std::size_t>(equals - *entry));
        if (name.starts_with("CWCREDS_") ||
            std::find(cw::k_aws_variables.begin(), cw::k_aws_variables.end(), name) != cw::k_aws_variables.end()) {
            env.emplace(name, std::string(equals + 1));
        }
    }
    return env;
}

}  // namespace

int main(int argc, char** argv)
{
    // 0. Secrets will be in memory: no core dump, no ptrace by neighbours.
    const bool dumps_disabled = cw::disable_core_dumps();

    // 1. The subcommand.
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::cerr << k_usage;
        return 2;
    }
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        std::cout << k_usage << "\n" << cw::help_text(cw::Command::serve);
        return 0;
    }
    if (args[0] == "--version" || args[0] == "version") {
        std::cout << "cwcreds " << CWCREDS_VERSION << "\n";
        return 0;
    }
    cw::Command command = cw::Command::serve;
    if (args[0] == "exchange") {
        command = cw::Command::exchange;
    } else if (args[0] == "credential-process") {
        command = cw::Command::credential_process;
    } else if (args[0] == "inspect") {
        command = cw::Command::inspect;
    } else if (args[0] == "inject") {
        command = cw::Command::inject;
    } else if (args[0] == "webhook") {
        command = cw::Command::webhook;
    } else if (args[0] != "serve") {
        std::cerr << "cwcreds: unknown command '" << args[0] << "'\n\n" << k_usage;
        return 2;
    }

    // 2. Configuration from flags and CWCREDS_* variables; bad values exit 2.
    cw::Config config;
    try {
        config = cw::parse_config(command, std::span{args}.subspan(1), environment());
    } catch (const cw::ConfigError& error) {
        std::cerr << "cwcreds: " << error.what() << "\n";
        return 2;
    }
    if (config.show_help) {
        std::cout << cw::help_text(command);
        return 0;
    }

    // 3. Logging, then the command; fatal errors exit 1.
    const bool daemon = command == cw::Command::serve || command == cw::Command::webhook;
    cw::setup_logging(config.log_format, daemon ? config.log_level : std::max(config.log_level, spdlog::level::warn));
    if (!dumps_disabled) {
        cw::log_event(spdlog::level::warn, "core dumps could not be disabled; a crash may write secrets to disk");
    }
    try {
        return cw::run_command(config);
    } catch (const cw::ConfigError& error) {
        // Found while starting (an accepted token file unusable): still a configuration mistake.
        std::cerr << "cwcreds: " << error.what() << "\n";
        return 2;
    } catch (const std::exception& error) {
        cw::log_event(spdlog::level::critical, "fatal", {{"error", error.what()}});
        return 1;
    }
}

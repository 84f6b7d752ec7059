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
        std::cerr << cw::overview_text();
        return 2;
    }
    if (args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
        if (args.size() < 2 || args[1] == "completion" || args[1] == "help") {
            std::cout << cw::overview_text();
            return 0;
        }
        // `cwcreds help SUB` is `cwcreds SUB --help`.
        if (const auto command = cw::command_named(args[1])) {
            std::cout << cw::help_text(*command);
            return 0;
        }
        std::cerr << "cwcreds help: " << cw::unknown_command_message(args[1]) << "\n";
        return 2;
    }
    if (args[0] == "--version" || args[0] == "version") {
        std::cout << "cwcreds " << CWCREDS_VERSION << "\n";
        return 0;
    }
    if (args[0] == "completion") {
        const std::string script = cw::completion_script(args.size() == 2 ? args[1] : "");
        if (script.empty()) {
            std::cerr << "cwcreds: usage: cwcreds completion bash|zsh (then: source <(cwcreds completion bash))\n";
            return 2;
        }
        std::cout << script;
        return 0;
    }
    const auto named = cw::command_named(args[0]);
    if (!named) {
        std::cerr << "cwcreds: " << cw::unknown_command_message(args[0]) << " (see cwcreds help)\n";
        return 2;
    }
    const cw::Command command = *named;

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
    // inspect and inject have no log flags: they print their result, and only warnings besides.
    const bool own_level = command != cw::Command::inspect && command != cw::Command::inject;
    cw::setup_logging(config.log_format,
                      own_level ? config.log_level : std::max(config.log_level, spdlog::level::warn));
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

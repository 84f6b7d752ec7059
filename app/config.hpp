// Configuration: a pure function from argv and an environment map.
//
// One table (config.cpp) lists every setting with its flag, environment
// variable, default and help line; parsing, defaults and `--help` all come
// from it. Flags win over environment variables. Anything wrong throws
// ConfigError once, naming the flag, and `main` turns that into exit code 2.
#pragma once

#include <array>
#include <map>
#include <optional>
#include <span>
#include <string>

#include <spdlog/common.h>

#include "common/config_error.hpp"
#include "common/logging.hpp"
#include "inject/inject_command.hpp"
#include "sidecar/inspect/inspect_command.hpp"
#include "sidecar/serve/serve_settings.hpp"
#include "webhook/webhook_settings.hpp"

namespace cw {

enum class Command { serve, exchange, credential_process, inspect, inject, webhook };

// Every subcommand's settings, as the table fills them. A flag several
// subcommands read (--token-file, --org-id, ...) is written to each struct
// that reads it, so each subcommand gets its own struct whole.
struct Config {
    Command command = Command::serve;
    bool show_help = false;
    ServeSettings sidecar;            // serve; exchange and credential-process read its token file and upstream
    bool allow_non_loopback = false;  // serve: a check made here, before anything listens
    InspectSettings inspect;          // inspect
    InjectSettings inject;            // inject; webhook (its mutation)
    WebhookSettings webhook;          // webhook
    LogFormat log_format = LogFormat::text;
    spdlog::level::level_enum log_level = spdlog::level::info;
};

using EnvMap = std::map<std::string, std::string, std::less<>>;

// Besides CWCREDS_*, the variables parse_config reads: those an AWS SDK in
// the app's container reads, for `inspect --s3` to get keys and reach S3 as
// the app does.
inline constexpr std::array<std::string_view, 8> k_aws_variables{"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                                                                 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                                                                 "AWS_ENDPOINT_URL_S3",
                                                                 "AWS_ENDPOINT_URL",
                                                                 "AWS_REGION",
                                                                 "AWS_DEFAULT_REGION",
                                                                 "AWS_CA_BUNDLE"};

Config parse_config(Command command, std::span<const std::string> args, const EnvMap& env);

// `cwcreds <command> --help` and `cwcreds help <command>`, generated from the settings table.
std::string help_text(Command command);

// `cwcreds help`: the commands and the few flags most users set.
std::string overview_text();

// `cwcreds completion bash|zsh`: subcommands and each one's flags; empty for another shell.
std::string completion_script(std::string_view shell);

// The command a name on the command line means, if any.
std::optional<Command> command_named(std::string_view name);

// "unknown command 'serv'; did you mean serve?"
std::string unknown_command_message(std::string_view name);

// The same table as Markdown, for docs/reference.md (a unit test keeps them equal).
std::string settings_markdown(Command command);

std::string_view command_name(Command command);

}  // namespace cw

// Configuration: a pure function from argv and an environment map.
//
// One table (config.cpp) lists every setting with its flag, environment
// variable, default and help line; parsing, defaults and `--help` all come
// from it. Flags win over environment variables. Anything wrong throws
// ConfigError once, naming the flag, and `main` turns that into exit code 2.
#pragma once

#include <filesystem>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/common.h>

#include "common/logging.hpp"
#include "app/settings.hpp"

namespace cw {

enum class Command { serve, exchange, credential_process, inspect, inject, webhook };

struct Config {
    Command command = Command::serve;
    bool show_help = false;
    std::filesystem::path token_file;
    std::filesystem::path client_token_file;
    std::vector<std::filesystem::path> accept_token_files;
    ImdsSettings imds;
    UpstreamSettings upstream;
    RefreshSettings refresh;
    ServerSettings server;
    bool allow_non_loopback = false;
    Millis token_poll{30'000};
    std::string audience = "https://coreweave.com/iam";  // inspect
    std::string sidecar_url;                             // inspect
    bool json_output = false;                            // inspect
    InjectSettings inject;                               // inject, webhook
    WebhookSettings webhook;                             // webhook
    LogFormat log_format = LogFormat::text;
    spdlog::level::level_enum log_level = spdlog::level::info;
};

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using EnvMap = std::map<std::string, std::string, std::less<>>;

Config parse_config(Command command, std::span<const std::string> args, const EnvMap& env);

// `cwcreds <command> --help`, generated from the settings table.
std::string help_text(Command command);

// The same table as Markdown, for README.md (a unit test keeps them equal).
std::string settings_markdown(Command command);

std::string_view command_name(Command command);

// The CoreWeave URL for a mode, used when --endpoint is not given.
std::string default_endpoint(ExchangeMode mode, const std::string& org_id);

bool is_loopback_host(std::string_view host);

}  // namespace cw

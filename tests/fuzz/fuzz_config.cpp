// Fuzz target: cw::parse_duration and cw::parse_config.
//
// The input is split on NUL bytes. The first part is fed to parse_duration
// (invariant: a parsed duration is >= 0 and formats to a spelling that parses
// back to the same value). Then the first byte of the input picks the
// subcommand, and the parts (the first without that byte, skipped when that
// leaves it empty) are argv, except parts of the form `CWCREDS_X=value`,
// which go into the environment map. Invariants: the only exception that
// escapes is the documented ConfigError; an accepted configuration obeys
// the rules the rest of the program relies on.
#include <cmath>
#include <vector>

#include "common/duration.hpp"
#include "common/loopback.hpp"
#include "fuzz_support.hpp"
#include "app/config.hpp"

namespace {

void check_duration(std::string_view text)
{
    const auto parsed = cw::parse_duration(text);
    if (!parsed) {
        return;
    }
    FUZZ_CHECK(parsed->count() >= 0);
    const std::string spelled = cw::format_duration(*parsed);
    const auto again = cw::parse_duration(spelled);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *parsed);
    FUZZ_CHECK(cw::format_duration(*again) == spelled);
}

bool in_range(double value, double low, double high)
{
    return std::isfinite(value) && value >= low && value <= high;
}

void check_config(const cw::Config& config)
{
    if (config.show_help) {
        FUZZ_CHECK(!cw::help_text(config.command).empty());
        return;
    }
    if (config.command == cw::Command::inspect) {
        FUZZ_CHECK(!config.inspect.token_file.empty());
        FUZZ_CHECK(!config.inspect.audience.empty());
        return;
    }
    const auto& upstream = config.sidecar.upstream;
    FUZZ_CHECK(!config.sidecar.token_file.empty());
    FUZZ_CHECK(!upstream.endpoint.empty());
    const bool https = upstream.endpoint.rfind("https://", 0) == 0;
    const bool http = upstream.endpoint.rfind("http://", 0) == 0;
    FUZZ_CHECK(https || http);
    if (upstream.mode == cw::ExchangeMode::oidc) {
        FUZZ_CHECK(!upstream.org_id.empty());
    }
    // An example's placeholder never gets as far as an exchange.
    FUZZ_CHECK(upstream.org_id.find("REPLACE-WITH-") == std::string::npos);
    FUZZ_CHECK(!(upstream.org_id.size() >= 2 && upstream.org_id.front() == '<' && upstream.org_id.back() == '>'));
    FUZZ_CHECK(upstream.duration >= std::chrono::seconds{1} && upstream.duration <= std::chrono::hours{12});
    FUZZ_CHECK(upstream.connect_timeout.count() > 0);
    FUZZ_CHECK(upstream.exchange_timeout.count() > 0);
    if (config.command != cw::Command::serve) {
        return;
    }
    FUZZ_CHECK(config.allow_non_loopback || cw::is_loopback_host(config.sidecar.server.host));
    FUZZ_CHECK(!config.sidecar.client_token_file.empty());
    FUZZ_CHECK(in_range(config.sidecar.refresh.refresh_fraction, 0.01, 0.9));
    FUZZ_CHECK(in_range(config.sidecar.refresh.refresh_jitter, 0.0, 0.5));
    FUZZ_CHECK(config.sidecar.refresh.expiry_margin.count() >= 0);
    FUZZ_CHECK(config.sidecar.refresh.retry_initial.count() > 0);
    FUZZ_CHECK(config.sidecar.refresh.retry_max.count() > 0);
    FUZZ_CHECK(config.sidecar.server.startup_wait.count() >= 0);
    FUZZ_CHECK(config.sidecar.token_poll.count() > 0);
    FUZZ_CHECK(config.sidecar.server.max_connections >= 1 && config.sidecar.server.max_connections <= 65536);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size)
{
    const std::string_view input = cw_fuzz::as_text(data, size);
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const auto end = input.find('\0', start);
        parts.emplace_back(input.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    check_duration(parts.front());

    if (size == 0) {
        return 0;
    }
    const auto command = static_cast<cw::Command>(data[0] % 4);
    parts.front().erase(0, 1);
    std::vector<std::string> args;
    cw::EnvMap env;
    for (std::size_t i = parts.front().empty() ? 1 : 0; i < parts.size(); ++i) {
        auto& part = parts[i];
        const auto equals = part.find('=');
        if (part.rfind("CWCREDS_", 0) == 0 && equals != std::string::npos) {
            env[part.substr(0, equals)] = part.substr(equals + 1);
        } else {
            args.push_back(std::move(part));
        }
    }
    try {
        check_config(cw::parse_config(command, args, env));
    } catch (const cw::ConfigError& error) {
        FUZZ_CHECK(std::string_view{error.what()}.size() > 0);
    }
    return 0;
}

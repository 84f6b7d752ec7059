// What the command line tells a user who asks for help or gets something
// wrong: per-command help, suggestions, placeholders, values that would be
// silently ignored, and the completion scripts, all from the settings table.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "app/config.hpp"

namespace {

std::string error_of(cw::Command command, std::vector<std::string> args, cw::EnvMap env = {})
{
    try {
        (void)cw::parse_config(command, args, env);
    } catch (const cw::ConfigError& error) {
        return error.what();
    }
    return "no error";
}

bool has(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

// The help entry (flag line and its text) of `flag` in `help`.
std::string entry(const std::string& help, const std::string& flag)
{
    const auto from = help.find("\n  " + flag + " ");
    if (from == std::string::npos) {
        return {};
    }
    return help.substr(from, help.find("\n  -", from + 1) - from);
}

}  // namespace

TEST_SUITE("app::cli_guidance")
{
    TEST_CASE("the overview lists the commands and a few flags, not every serve flag")
    {
        const std::string overview = cw::overview_text();
        for (const char* command :
             {"serve", "exchange", "credential-process", "inspect", "inject", "webhook", "completion", "help"}) {
            CAPTURE(command);
            CHECK(has(overview, "\n  " + std::string{command} + " "));
        }
        CHECK(has(overview, "--org-id"));
        CHECK(has(overview, "cwcreds help <command>"));
        CHECK_FALSE(has(overview, "--max-connections"));
        CHECK_FALSE(has(overview, "--refresh-jitter"));
        CHECK(std::count(overview.begin(), overview.end(), '\n') < 35);
    }

    TEST_CASE("help names a command by its command-line name")
    {
        CHECK(cw::command_named("credential-process") == cw::Command::credential_process);
        CHECK(cw::command_named("webhook") == cw::Command::webhook);
        CHECK_FALSE(cw::command_named("serv").has_value());
    }

    TEST_CASE("each command's help lists only its flags, with texts true for it")
    {
        const std::string inspect = cw::help_text(cw::Command::inspect);
        CHECK(has(entry(inspect, "--org-id"), "bucket-policy principal"));
        CHECK_FALSE(has(entry(inspect, "--org-id"), "endpoint URL"));
        CHECK_FALSE(has(inspect, "--log-format"));
        CHECK_FALSE(has(inspect, "--log-level"));
        CHECK(has(entry(inspect, "--token-file"), "to check"));

        const std::string serve = cw::help_text(cw::Command::serve);
        CHECK(has(entry(serve, "--org-id"), "builds the endpoint URL"));
        CHECK(has(entry(serve, "--duration"), "only with --exchange oidc"));
        CHECK(has(serve, "--log-format"));

        for (const auto command : {cw::Command::inject, cw::Command::webhook}) {
            const std::string help = cw::help_text(command);
            CAPTURE(help);
            CHECK(has(entry(help, "--org-id"), "cwcreds.coreweave.com/org-id annotation wins"));
            CHECK(has(entry(help, "--exchange"), "injected sidecar"));
            CHECK(has(entry(help, "--duration"), "injected sidecar"));
            CHECK(has(entry(help, "--image"), "required"));
            CHECK_FALSE(has(help, "builds the endpoint URL"));
        }
        CHECK_FALSE(has(cw::help_text(cw::Command::inject), "--log-level"));
        CHECK(has(entry(cw::help_text(cw::Command::exchange), "--log-level"), "default warn"));
    }

    TEST_CASE("an unknown flag or command gets the nearest known name")
    {
        CHECK(error_of(cw::Command::serve, {"--org-idd", "o"}) ==
              "--org-idd: unknown flag for 'cwcreds serve'; did you mean --org-id?");
        CHECK(has(error_of(cw::Command::inspect, {"--sidcar", "http://127.0.0.1:1"}), "did you mean --sidecar?"));
        // Far from every flag: no guess, but where to look.
        CHECK(error_of(cw::Command::serve, {"--zzzzzzzz"}) ==
              "--zzzzzzzz: unknown flag for 'cwcreds serve' (see cwcreds help serve)");
        // Another command's flag: which commands take it.
        CHECK(error_of(cw::Command::exchange, {"--imds"}) ==
              "--imds: unknown flag for 'cwcreds exchange' (it is a flag of serve)");
        CHECK(cw::unknown_command_message("serv") == "unknown command 'serv'; did you mean serve?");
        CHECK(cw::unknown_command_message("injcet") == "unknown command 'injcet'; did you mean inject?");
        CHECK(cw::unknown_command_message("frobnicate") == "unknown command 'frobnicate'");
    }

    TEST_CASE("placeholders are refused naming the flag or variable that carried them")
    {
        CHECK(error_of(cw::Command::serve, {"--org-id", "<ORG-ID>"}) ==
              "--org-id: '<ORG-ID>' is a placeholder left from an example: put your own value there");
        CHECK(error_of(cw::Command::serve, {}, {{"CWCREDS_ORG_ID", "REPLACE-WITH-ORG-ID"}})
                  .starts_with("CWCREDS_ORG_ID (--org-id): 'REPLACE-WITH-ORG-ID' is a placeholder"));
        CHECK(error_of(cw::Command::exchange, {"--org-id", "o", "--endpoint", "<URL>"})
                  .starts_with("--endpoint: '<URL>' is a placeholder"));
        CHECK(error_of(cw::Command::inject, {"--image", "<REGISTRY>/cwcreds:1"})
                  .starts_with("--image: '<REGISTRY>/cwcreds:1' is a placeholder"));
        // A flag wins over a placeholder left in the environment.
        CHECK(error_of(cw::Command::serve, {"--org-id", "acme"}, {{"CWCREDS_ORG_ID", "<ORG-ID>"}}) == "no error");
        // Angle brackets inside a value are no placeholder.
        CHECK(error_of(cw::Command::serve, {"--org-id", "a<b>c"}) == "no error");
        CHECK(error_of(cw::Command::serve, {"--org-id", "<your org>"})
                  .starts_with("--org-id: '<your org>' is a placeholder"));
    }

    TEST_CASE("--duration given outside oidc mode is refused, the default is not")
    {
        CHECK(error_of(cw::Command::serve, {"--org-id", "o"}) == "no error");
        CHECK(error_of(cw::Command::serve, {"--org-id", "o", "--duration", "1h30m"}) ==
              "--duration: container-credentials keys always last 15 minutes; --duration applies only with "
              "--exchange oidc");
        CHECK(error_of(cw::Command::serve, {"--org-id", "o"}, {{"CWCREDS_DURATION", "2h"}})
                  .starts_with("CWCREDS_DURATION (--duration): container-credentials keys always last 15 minutes"));
        CHECK(error_of(cw::Command::serve, {"--org-id", "o", "--exchange", "oidc", "--duration", "2h"}) == "no error");
        CHECK(error_of(cw::Command::inject, {"--image", "r.example/c:1", "--duration", "2h"})
                  .starts_with("--duration: container-credentials keys"));
        CHECK(error_of(cw::Command::inject, {"--image", "r.example/c:1", "--duration=2h", "--exchange=oidc"}) ==
              "no error");
    }

    TEST_CASE("inject and webhook need an image, except to remove the sidecar")
    {
        CHECK(error_of(cw::Command::inject, {}).starts_with("--image: required"));
        CHECK(error_of(cw::Command::webhook, {"--tls-cert-file", "/c", "--tls-key-file", "/k"})
                  .starts_with("--image: required"));
        CHECK(error_of(cw::Command::inject, {"--remove"}) == "no error");
        CHECK(error_of(cw::Command::inject, {}, {{"CWCREDS_IMAGE", "r.example/cwcreds:1"}}) == "no error");
    }

    TEST_CASE("completion scripts offer every command and each command's own flags")
    {
        const std::string bash = cw::completion_script("bash");
        CHECK(has(bash, "complete -o filenames -F _cwcreds cwcreds"));
        CHECK(has(bash, "credential-process"));
        const auto line_of = [&bash](const std::string& command) {
            const auto from = bash.find("        " + command + ") flags=");
            REQUIRE(from != std::string::npos);
            return bash.substr(from, bash.find('\n', from) - from);
        };
        CHECK(has(line_of("serve"), " --max-connections"));
        CHECK(has(line_of("inspect"), " --sidecar"));
        CHECK_FALSE(has(line_of("inspect"), " --listen"));
        CHECK(has(line_of("webhook"), " --tls-cert-file"));
        // A flag with one row per command group is offered once.
        const std::string inject = line_of("inject");
        CHECK(inject.find(" --org-id") == inject.rfind(" --org-id"));

        const std::string zsh = cw::completion_script("zsh");
        CHECK(zsh.starts_with("#compdef cwcreds\n"));
        CHECK(has(zsh, "'--org-id[CoreWeave organization id]:ID: '"));
        CHECK(has(zsh, "'--token-file[projected service-account token to exchange (the pods projected token volume)]:PATH:_files'"));
        CHECK(has(zsh, "'--listen[where to serve]:HOST PORT: '"));
        CHECK(has(zsh, ":MODE:(container-credentials oidc)'"));
        CHECK(has(bash, "--log-level) COMPREPLY=($(compgen -W \"debug info warn error\" -- \"$cur\")); return ;;"));
        CHECK(cw::completion_script("fish").empty());
    }
}

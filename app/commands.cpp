#include "app/commands.hpp"

#include "inject/inject_command.hpp"
#include "sidecar/exchange/exchange_command.hpp"
#include "sidecar/inspect/inspect_command.hpp"
#include "sidecar/serve/serve_command.hpp"
#include "webhook/webhook_command.hpp"

namespace cw {

int run_command(const Config& config)
{
    switch (config.command) {
        case Command::serve:
            return run_serve(config.sidecar);
        case Command::exchange:
        case Command::credential_process:
            return run_exchange({.token_file = config.sidecar.token_file,
                                 .upstream = config.sidecar.upstream,
                                 .shape = config.command == Command::credential_process
                                              ? CredentialShape::credential_process
                                              : CredentialShape::container_credentials});
        case Command::inspect:
            return run_inspect(config.inspect);
        case Command::inject:
            return run_inject(config.inject);
        case Command::webhook:
            return run_webhook(config.webhook, config.inject.mutation);
    }
    return 2;
}

}  // namespace cw

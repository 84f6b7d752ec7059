// The subcommands, each a function from a parsed Config to an exit code.
#pragma once

#include "inject/pod_mutation.hpp"
#include "app/config.hpp"

namespace cw {

// `cwcreds serve`: the sidecar. Returns 0 after SIGTERM/SIGINT.
int run_serve(const Config& config);

// `cwcreds exchange` and `cwcreds credential-process`: one exchange, JSON on stdout.
int run_exchange(const Config& config);

// `cwcreds inspect`: what is wrong with the token (and the sidecar). Exit 1 on a failed check.
int run_inspect(const Config& config);

// The inject/webhook flags as the mutation's options.
InjectOptions inject_options(const Config& config);

// `cwcreds inject`: YAML in, YAML with cwcreds in every pod template out. Exit 2 on bad input.
int run_inject(const Config& config);

// `cwcreds webhook`: the mutating admission webhook. Returns 0 after SIGTERM/SIGINT.
int run_webhook(const Config& config);

}  // namespace cw

// The subcommands: each one's settings taken from the parsed Config, then its
// run function, which lives with the job it does (sidecar/, inject/, webhook/).
#pragma once

#include "app/config.hpp"

namespace cw {

// The exit code of config.command.
int run_command(const Config& config);

}  // namespace cw

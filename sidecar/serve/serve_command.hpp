// `cwcreds serve`: the sidecar.
#pragma once

#include "sidecar/serve/serve_settings.hpp"

namespace cw {

// Runs until SIGTERM/SIGINT, then returns 0. An unusable accepted token file
// throws ConfigError (exit 2).
int run_serve(const ServeSettings& settings);

}  // namespace cw

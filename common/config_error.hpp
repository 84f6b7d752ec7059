// A mistake in how cwcreds was started: a flag, a variable, or a file a flag
// names. Thrown once while starting, naming the flag; `main` turns it into
// exit code 2 and never into a retry.
#pragma once

#include <stdexcept>

namespace cw {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace cw

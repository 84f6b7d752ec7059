// `cwcreds inject`: Kubernetes YAML in, YAML with cwcreds in every pod template out.
#pragma once

#include <string>

#include "inject/pod_mutation.hpp"

namespace cw {

struct InjectSettings {
    InjectOptions mutation;    // the sidecar added (pod annotations may override)
    std::string input = "-";   // file to read, - for stdin
    bool print_patch = false;  // a JSON Patch per object instead of YAML
    bool remove = false;       // take cwcreds out instead of putting it in
};

// Exit 2 on bad input.
int run_inject(const InjectSettings& settings);

}  // namespace cw

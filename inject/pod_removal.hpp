// Taking cwcreds out of a pod it injected (`cwcreds inject --remove`, and the
// first half of injecting again with other settings): a pure function from a
// pod (or pod template) to the pod as it was before, plus the JSON Patch
// between the two.
//
// What goes is what the injection adds and nothing a user wrote: the cwcreds
// init container, the volumes cwcreds-token and cwcreds-aws, every mount at
// cwcreds's own token directory or of cwcreds-aws, the env values that point
// at the sidecar, its token or its config file, the marker annotation and
// the default aws-config text. A FULL_URI the injection moved from
// CoreWeave's exchange endpoint to the sidecar gets its old value back (the
// injection recorded it in cwcreds.coreweave.com/replaced-full-uri). The
// settings annotations (org-id, image, ports, ...) are the owner's and stay.
#pragma once

#include <nlohmann/json.hpp>

#include "inject/pod_mutation.hpp"

namespace cw {

// A pod without the marker annotation comes back unchanged, `unchanged`
// saying so: a sidecar put there by hand or by the kustomize component is
// not cwcreds inject's to take.
InjectResult remove_pod(const nlohmann::json& pod);

}  // namespace cw

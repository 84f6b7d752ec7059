# Mutants of inject/: the pod mutation, where each workload keeps its pod,
# manifests and YAML.
# Sourced by scripts/mutants.sh; see there for the format.

# An app with a credentials endpoint of its own would be silently redirected.
mutant own-endpoint-redirected inject/pod_mutation.cpp \
  's/if (value != k_credentials_uri \&\& is_exchange_url(value)) {/if (value != k_credentials_uri \&\& (is_exchange_url(value) || true)) {/' \
  "$unit"
# A skipped mesh proxy in native sidecar mode would get AWS env and mounts.
mutant skip-ignored-for-init-containers inject/pod_mutation.cpp \
  's/if (name != k_sidecar \&\& !settings\.skip\.contains(name)) {/if (name != k_sidecar) {/' \
  "$unit"
mutant guaranteed-size-differs-from-component inject/sidecar_spec.cpp \
  's/{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}},/{"requests", {{"cpu", "250m"}, {"memory", "64Mi"}}},/; s/{"limits", {{"cpu", "100m"}, {"memory", "64Mi"}}}}/{"limits", {{"cpu", "250m"}, {"memory", "64Mi"}}}}/' \
  "$unit"
mutant cronjob-pod-not-found inject/workload.cpp \
  's|Kind{"batch", "CronJob", "/spec/jobTemplate/spec/template"},|Kind{"batch", "CronJob", "/spec/template"},|' \
  "$unit"
mutant list-items-after-first-skipped inject/manifest_injection.cpp \
  's/const std::size_t count = list ? document\["items"\]\.size() : 1;/const std::size_t count = list ? std::min<std::size_t>(document["items"].size(), 1) : 1;/' \
  "$unit"
# hostNetwork: True would be injected instead of refused.
mutant capitalised-booleans-are-strings inject/yaml_json.cpp \
  's/if (text == "true" || text == "True" || text == "TRUE") {/if (text == "true") {/; s/if (text == "false" || text == "False" || text == "FALSE") {/if (text == "false") {/' \
  "$unit"
# A multi-document alias bomb would cost N times the bound.
mutant node-budget-per-document inject/yaml_json.cpp \
  's/^    Converter converter{limits};$//; s/^            documents\.push_back(converter\.convert(nodes\[i\], 0));/            Converter converter{limits};\n            documents.push_back(converter.convert(nodes[i], 0));/' \
  "$unit"

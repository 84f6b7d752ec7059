# Mutants of inject/: the pod mutation, where each workload keeps its pod,
# manifests and YAML.
# Sourced by scripts/mutants.sh; see there for the format.

# An app with a credentials endpoint of its own would be silently redirected.
mutant own-endpoint-redirected inject/pod_mutation.cpp \
  's/const std::string old = string_at(env\[\*i\], "value"); is_exchange_url(old)) {/const std::string old = string_at(env[*i], "value"); old != uri) {/' \
  "$unit"
# A skipped mesh proxy in native sidecar mode would get AWS env and mounts.
mutant skip-ignored-for-init-containers inject/pod_mutation.cpp \
  's/if (name != k_sidecar \&\& !settings\.skip\.contains(name) \&\& !is_mesh_container(name)) {/if (name != k_sidecar \&\& !is_mesh_container(name)) {/' \
  "$unit"
mutant guaranteed-size-differs-from-component inject/injection_settings.cpp \
  's/r = Resources{"100m", "64Mi", "100m", "64Mi"};/r = Resources{"250m", "64Mi", "250m", "64Mi"};/' \
  "$unit"
# A BestEffort pod would become Burstable, and no one would say so.
mutant best-effort-sidecar-sized inject/injection_settings.cpp \
  's/^        settings\.no_resources = true;$/        settings.no_resources = false;/' \
  "$unit"
# On hostNetwork the probe listener would open a port on every node interface.
mutant host-network-probes-on-every-interface inject/sidecar_spec.cpp \
  's/(settings\.host_network ? "127\.0\.0\.1:" : "0\.0\.0\.0:")/std::string{"0.0.0.0:"}/' \
  "$unit"
# --remove would leave the direct setup's container without its CoreWeave URL.
mutant removal-forgets-replaced-uri inject/pod_removal.cpp \
  's/^                    kept\.push_back(std::move(entry));$//' \
  "$unit"
# inject with a new image would keep the old injection.
mutant reinjection-ignores-new-settings inject/workload.cpp \
  's/if (new_sidecar != nullptr \&\& \*new_sidecar == \*old_sidecar) {/if (true) {/' \
  "$unit"
mutant cronjob-pod-not-found inject/workload.cpp \
  's|Kind{"batch", "CronJob", "/spec/jobTemplate/spec/template"},|Kind{"batch", "CronJob", "/spec/template"},|' \
  "$unit"
mutant list-items-after-first-skipped inject/manifest_injection.cpp \
  's/const std::size_t count = list ? document\["items"\]\.size() : 1;/const std::size_t count = list ? std::min<std::size_t>(document["items"].size(), 1) : 1;/' \
  "$unit"
# hostNetwork: True would be injected instead of refused.
mutant capitalised-booleans-are-strings inject/yaml_json.cpp \
  's/"True", "TRUE", "on",  "On",  "ON"};/"on",  "On",  "ON"};/; s/"False", "FALSE", "off", "Off", "OFF"};/"off", "Off", "OFF"};/; s/std::array<std::string_view, 11>/std::array<std::string_view, 9>/g' \
  "$unit"
# A multi-document alias bomb would cost N times the bound.
mutant node-budget-per-document inject/yaml_json.cpp \
  's/^    Converter converter{limits};$//; s/^            documents\.push_back(converter\.convert(nodes\[i\], 0));/            Converter converter{limits};\n            documents.push_back(converter.convert(nodes[i], 0));/' \
  "$unit"
# A pod's own annotation would lose to the inject or webhook option.
mutant option-beats-annotation inject/injection_settings.cpp \
  's/settings\.image = annotated_image\.value_or(options\.image);/settings.image = options.image.empty() ? annotated_image.value_or("") : options.image;/' \
  "$unit"
# An org id pasted with its placeholder brackets (<ORG-ID>) would build a broken URL.
mutant any-org-id-accepted inject/injection_settings.cpp \
  's/^    if (!is_org_id(settings\.org_id)) {$/    if (false) {/' \
  "$unit"
# Annotation keys hold '/': unescaped, a JSON Patch path would point elsewhere.
mutant pointer-slash-unescaped inject/pod_fields.cpp \
  's/            out += "~1";/            out += c;/' \
  "$unit"
# "a, b" in skip-containers would name " b", which no pod has.
mutant skip-names-untrimmed inject/pod_fields.cpp \
  's/^    const auto first = text\.find_first_not_of(" \\t");$/    const auto first = text.find_first_not_of("");/' \
  "$unit"
# A disk image given to -f by mistake would be read whole (and /dev/zero forever).
mutant inject-input-unbounded inject/inject_command.cpp \
  's/        if (text\.size() > k_max_input) {/        if (false) {/' \
  '-R ^integration\.test_subcommands$'
# A long string aliased many times would be expanded whole (100 MB from 104 KB of YAML).
mutant text-budget-ignored inject/yaml_json.cpp \
  's/^        if (m_text_bytes > m_limits\.max_text_bytes) {$/        if (false) {/' \
  "$unit"
# A key over YAML's 1024-character limit would be written in a form that does not read back the same.
mutant implausible-key-accepted inject/yaml_json.cpp \
  's/^                    if (!is_plausible_key(entry\.first\.Scalar())) {$/                    if (false) {/' \
  "$unit"
# GitOps YAML's `defaultMode: 0400` read as decimal 400 would be mode 0620: a group-writable Secret.
mutant octal-read-as-decimal inject/yaml_json.cpp \
  's/^            base = 8;$/            base = 10;/' \
  "$unit"
# A Guaranteed GPU Job would turn Burstable and its trainer lose its exclusive cores.
mutant guaranteed-not-kept inject/injection_settings.cpp \
  's/^            settings\.guaranteed = true;$/            (void)0;/' \
  "$unit"
# An app declaring 9912 would be injected with a second 9912: one of them cannot bind.
mutant port-clash-unchecked inject/pod_mutation.cpp \
  's/^            if (value != settings\.port \&\& value != settings\.probe_port) {$/            if (true) {/' \
  "$unit"
# A token projected beside a Secret would hand that Secret to every container.
mutant mixed-token-volume-reused inject/pod_mutation.cpp \
  's/^        if (sources->size() != 1) {$/        if (false) {/' \
  "$unit"
# Static keys in a container would silently win over cwcreds, nobody told.
mutant static-keys-unwarned inject/pod_mutation.cpp \
  's/^        if (name == "AWS_ACCESS_KEY_ID" || name == "AWS_SECRET_ACCESS_KEY") {$/        if (false) {/' \
  "$unit"
# A PyTorchJob or JobSet through inject would come out without cwcreds, nothing said.
mutant operator-kinds-passed-through inject/workload.cpp \
  's/^        find_templates(object, "", 0, found);$/        (void)0;/' \
  "$unit"

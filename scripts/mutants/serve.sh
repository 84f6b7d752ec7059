# Mutants of sidecar/serve: callers, answers, IMDS, metrics.
# Sourced by scripts/mutants.sh; see there for the format.

mutant refusal-rereads-unlimited sidecar/serve/caller_auth.cpp \
  's/if (source\.changed_since_read() || m_reread\[index\]\.allow(now)) {/if (true) {/' \
  "$unit"
mutant missing-authorization-403 sidecar/serve/caller_auth.cpp \
  's/^            401, "MissingAuthorization",/            403, "MissingAuthorization",/' \
  "$hostile"
mutant no-cache-control sidecar/serve/http_server.cpp \
  's/return HttpResponse{200, "application\/json", served->body, {{"Cache-Control", "no-store"}}};/return HttpResponse{200, "application\/json", served->body, {}};/' \
  "$serve"
mutant startup-wait-ignored sidecar/serve/http_server.cpp \
  's/out\.park_limit = settings\.startup_wait;/out.park_limit = Millis{0};/' \
  "$startup"
mutant changed-file-waits-for-limit sidecar/serve/caller_auth.cpp \
  's/if (source\.changed_since_read() || m_reread\[index\]\.allow(now)) {/if (m_reread[index].allow(now)) {/' \
  "$unit"
mutant refusal-warnings-unlimited sidecar/serve/caller_auth.cpp \
  's/if (!m_warning\[index\]\.allow(now)) {/if (false) {/' \
  "$unit"
mutant imds-any-method sidecar/serve/imds.cpp \
  's/if (request\.method != "GET" \&\& request\.method != "HEAD") {/if (false) {/' \
  "$unit"
mutant latency-histogram-not-cumulative sidecar/serve/metrics.cpp \
  's/cumulative += m_latency_buckets\[i\]\.load();/cumulative = m_latency_buckets[i].load();/' \
  "$unit"
mutant status-key-id-unmasked sidecar/serve/status_report.cpp \
  's/{"access_key_id", mask_access_key_id(credentials\.access_key_id)},/{"access_key_id", credentials.access_key_id},/' \
  "$unit"
mutant probe-listener-serves-credentials sidecar/serve/http_server.cpp \
  's/(routes == Routes::all || (route != Route::credentials \&\& route != Route::status));/true;/' \
  "$unit"
mutant short-accepted-token-file-started sidecar/serve/serve_command.cpp \
  's/if (source->reload() == TokenChange::unavailable) {/if (source->reload() == TokenChange::unavailable \&\& false) {/' \
  '-R ^integration\.test_callers$'
# A static token whose file vanished without an event would be accepted until the next poll.
mutant static-token-match-not-rechecked sidecar/serve/caller_auth.cpp \
  's/        if (\*kind != CallerKind::accepted_token) {/        if (true) {/' \
  "$unit"
# A page rebound to 127.0.0.1 by DNS (a browser or crawler in the pod) would get keys.
mutant imds-any-host sidecar/serve/imds.cpp \
  's/^    return name == "169\.254\.169\.254" || is_loopback_host(name);$/    return true;/' \
  "$unit"
# A request relayed by a proxy that adds only Forwarded or Via would be answered.
mutant imds-relay-headers-ignored sidecar/serve/imds.cpp \
  's/^    if (request\.relayed || !header_values(request, "x-forwarded-for")\.empty() ||$/    if (!header_values(request, "x-forwarded-for").empty() ||/' \
  "$unit"
# A session token with its expiry rewritten (stretched past its TTL, or made up) would open credentials.
mutant imds-seal-unchecked sidecar/serve/imds.cpp \
  's/    if (CRYPTO_memcmp(mac\.data(), bytes->data() + k_sealed_bytes, k_seal_bytes) != 0) {/    if (false) {/' \
  "$unit"
# A Job whose token CoreWeave rejects would sit in Init for ever, holding its GPUs.
mutant startup-gate-never-opens sidecar/serve/startup_gate.cpp \
  's/^    if (m_open_after > Millis{0} \&\& now - m_started >= m_open_after) {$/    if (false) {/' \
  "$unit"
# --startup-gate 0s (keep the app waiting for keys) would open at once.
mutant startup-gate-zero-opens-at-once sidecar/serve/startup_gate.cpp \
  's/^    if (m_open_after > Millis{0} \&\& now - m_started >= m_open_after) {$/    if (now - m_started >= m_open_after) {/' \
  "$unit"

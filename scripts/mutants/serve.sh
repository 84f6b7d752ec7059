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

# Mutants of webhook/: admission, its certificate, its server.
# Sourced by scripts/mutants.sh; see there for the format.

webhook='-R ^integration\.test_webhook(_attacks)?$'

mutant refused-pod-answered-400 webhook/admission.cpp \
  's/^        answer\.result = AdmissionResult::denied;/        answer.http_status = 400;\n        answer.result = AdmissionResult::denied;/' \
  "$unit"
# cert-manager with rotationPolicy: Never renews tls.crt alone.
mutant certificate-reloaded-only-when-both-change webhook/certificate_store.cpp \
  's/if (cert == m_cert_identity \&\& key == m_key_identity) {/if (cert == m_cert_identity || key == m_key_identity) {/' \
  "$unit"
mutant certificate-expiry-metric-stale webhook/certificate_store.cpp \
  '/^    m_key_identity = key;$/{n;s/^    m_not_after = m_pair->not_after;$/    (void)0;/}' \
  "$unit"
mutant review-size-unbounded webhook/webhook_server.cpp \
  's/^        options\.max_body = k_max_review;/        options.max_body = 64 * k_max_review;/' \
  "$webhook"
mutant webhook-without-buffer-budget webhook/webhook_server.cpp \
  's/^        options\.max_buffered = k_buffer_budget;/        options.max_buffered = 1024 * k_buffer_budget;/' \
  "$webhook"

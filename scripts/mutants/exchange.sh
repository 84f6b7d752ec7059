# Mutants of sidecar/exchange: renewal, clocks, retries, the token file.
# Sourced by scripts/mutants.sh; see there for the format.

mutant fraction-fixed-0.25 sidecar/exchange/refresh_policy.cpp \
  's/lifetime_ms \* settings\.refresh_fraction \*/lifetime_ms * 0.25 */' \
  "$unit"
mutant jitter-ignored sidecar/exchange/refresh_policy.cpp \
  's/const double jitter = settings\.refresh_jitter \* /const double jitter = 0.0 * /' \
  "$unit"
mutant margin-dropped sidecar/exchange/refresh_policy.cpp \
  's/return credentials\.end() - expiry_margin(credentials, settings);/return credentials.end();/' \
  "$unit"
mutant margin-not-capped sidecar/exchange/refresh_policy.cpp \
  's/return std::min(settings\.expiry_margin, std::max(credentials\.lifetime(), Millis{0}) \/ 10);/return settings.expiry_margin;/' \
  "$unit"
mutant renewal-not-capped-before-end sidecar/exchange/refresh_policy.cpp \
  's/return std::min(due, serve_until(credentials, settings) - expiry_margin(credentials, settings));/return due;/' \
  "$unit"
mutant lifetime-on-node-clock sidecar/exchange/credentials.cpp \
  's/return std::chrono::duration_cast<Millis>(expiration - upstream_date\.value_or(obtained_at));/return std::chrono::duration_cast<Millis>(expiration - obtained_at);/' \
  "$unit"
mutant wall-step-not-restated sidecar/exchange/refresher.cpp \
  's/if (drift < k_wall_step \&\& drift > -k_wall_step) {/if (true) {/' \
  "$unit"
mutant date-second-kept sidecar/exchange/credentials.cpp \
  's/return sent + lifetime() - (upstream_date ? k_date_resolution : Millis{0});/return sent + lifetime();/' \
  "$unit"
mutant date-unbounded sidecar/exchange/upstream_answer.cpp \
  's/if (\*expiration - now > k_max_lifetime) {/if (false) {/' \
  "$unit"
mutant short-keys-loop sidecar/exchange/refresher.cpp \
  's/!cw::servable(\*result\.credentials, m_settings, now)) {/false) {/' \
  "$unit"
mutant backoff-not-capped sidecar/exchange/backoff.cpp \
  's/std::min(grown, static_cast<double>(settings\.retry_max\.count()))/grown/' \
  "$unit"
mutant retry-after-ignored sidecar/exchange/backoff.cpp \
  's/delay += \*retry_after;/(void)delay;/' \
  "$unit"
mutant rejected-retried-like-retryable sidecar/exchange/backoff.cpp \
  's/if (outcome != ExchangeOutcome::rejected) {/if (true) {/' \
  "$unit"
mutant one-exchange-per-waiting-caller sidecar/exchange/refresher.cpp \
  '/^std::shared_ptr<const Served> Refresher::servable()$/,/^}/s/^    std::shared_ptr<const Served> served;$/    if (!first_attempt_done()) { step(); }\n    std::shared_ptr<const Served> served;/' \
  "$unit"
mutant upstream-body-not-redacted sidecar/exchange/exchange_client.cpp \
  's/sanitize_excerpt(transfer\.body)/transfer.body.substr(0, 160)/' \
  "$unit"
mutant previous-token-refused sidecar/exchange/token_source.cpp \
  's/return current || (previous \&\& previous_unexpired);/return current;/' \
  "$unit"
mutant previous-token-past-exp-accepted sidecar/exchange/token_source.cpp \
  's/return current || (previous \&\& previous_unexpired);/return current || previous;/' \
  "$unit"
mutant token-reloads-not-serialised sidecar/exchange/token_source.cpp \
  's/std::unique_lock serialised{m_reload_mutex};/std::unique_lock serialised{m_reload_mutex, std::defer_lock};/; s/^    serialised\.unlock();/    if (serialised.owns_lock()) { serialised.unlock(); }/' \
  "$unit"
mutant stall-allowance-fixed sidecar/exchange/refresher.cpp \
  's/return k_base + exchange_timeout;/return k_base;/' \
  "$unit"
mutant min-length-inclusive sidecar/exchange/token_source.cpp \
  's/} else if (text\.size() < m_rules\.min_length) {/} else if (text.size() <= m_rules.min_length) {/' \
  "$unit"
mutant stamp-path-unresolved sidecar/exchange/token_source.cpp \
  's/return {resolved\.get(), static_cast<unsigned long long>(info\.st_dev),/return {file.string(), static_cast<unsigned long long>(info.st_dev),/' \
  "$unit"
mutant sent-at-the-answer sidecar/exchange/exchange_client.cpp \
  's/result\.credentials->sent = sent;/result.credentials->sent = m_clock.steady_now();/' \
  "$unit"
mutant watch-the-file-not-its-directory sidecar/exchange/token_watcher.cpp \
  's/const auto directory = m_sources\[i\]->file()\.parent_path();/const auto directory = m_sources[i]->file();/' \
  "$unit"
mutant empty-session-token-kept sidecar/exchange/credentials.cpp \
  's/if (!credentials\.session_token\.empty()) {/if (true) {/' \
  "$unit"
mutant credential-process-shape-ignored sidecar/exchange/exchange_command.cpp \
  's/if (settings\.shape == CredentialShape::credential_process) {/if (false) {/' \
  '-R ^integration\.test_subcommands$'
# A rejected token would be reported as a passing upstream fault, in logs and metrics.
mutant rejected-named-retryable sidecar/exchange/refresh_observer.cpp \
  's/        return "rejected";/        return "retryable";/' \
  "$unit"
# An emptied or deleted static caller token file would keep its value accepted until restart.
mutant static-token-kept-when-spoiled sidecar/exchange/token_source.cpp \
  's/            if (!m_rules\.keep_last_good \&\& m_current) {/            if (false) {/' \
  "$unit"
# The upstream's Expiration served as it said it: with a node clock off, SDKs renew too late or at once.
mutant expiration-served-as-upstream-said sidecar/exchange/refresher.cpp \
  's/    served->body = container_credentials_json(credentials, on_wall_clock(credentials\.end(), wall, steady));/    served->body = container_credentials_json(credentials, credentials.expiration);/' \
  "$unit"

#!/usr/bin/env bash
# Mutation check: does the suite notice when a promise of the README breaks?
#
# Each mutant below is one deliberate bug: a file, a one-line sed script (or a
# small patch), and the CTest selection whose tests must fail because of it.
# The mutants are applied one at a time to a scratch copy of the working tree
# (build-mutants/src, never the real tree), built unoptimised in
# build-mutants/build (kept between runs, so only the mutated file and the
# links are rebuilt), and the selected tests are run. First the selected tests
# run once on the unmutated copy: a test that fails without a mutant would
# "catch" everything.
#
#   bash scripts/mutants.sh              # quick mode: the mutants marked quick (CI, scripts/test.sh)
#   bash scripts/mutants.sh --all        # every mutant (tens of minutes)
#   bash scripts/mutants.sh NAME...      # the named mutants
#   bash scripts/mutants.sh --list       # names, files and selections
#
# Prints `caught` or `survived` per mutant and a final line
# `mutants: N caught, M survived, K broken` (broken: the edit no longer
# applies, or the mutant does not compile); exits non-zero unless every
# mutant run was caught.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

names=() files=() edits=() selections=() quick=()

# mutant NAME FILE EDIT SELECTION [quick]
#   EDIT       a sed script for `sed -i -e` on FILE, or @PATH: a patch (-p1)
#              relative to the repository root
#   SELECTION  ctest arguments choosing the tests that must catch it
#   quick      also run in quick mode (keep quick mode to a couple of minutes)
mutant() {
  names+=("$1") files+=("$2") edits+=("$3") selections+=("$4") quick+=("${5:-}")
}

# Integration test selections (one CTest test per file).
refresh='-R ^integration\.test_refresh$'
faults='-R ^integration\.test_upstream_faults$'
leaks='-R ^integration\.test_no_secret_leaks$'
hostile='-R ^integration\.test_hostile_clients$'
serve='-R ^integration\.test_serve$'
startup='-R ^integration\.test_startup_shutdown$'
clocks='-R ^integration\.test_clocks$'
unit='-L ^unit$'

# -- Renewal ------------------------------------------------------------------
mutant fraction-ignored app/config.cpp \
  's/c\.sidecar\.refresh\.refresh_fraction = fraction_value(v, 0\.01, 0\.9);/(void)fraction_value(v, 0.01, 0.9);/' \
  "$refresh"
mutant fraction-fixed-0.25 sidecar/exchange/refresh_policy.cpp \
  's/lifetime_ms \* settings\.refresh_fraction \*/lifetime_ms * 0.25 */' \
  "$refresh"
mutant jitter-ignored sidecar/exchange/refresh_policy.cpp \
  's/const double jitter = settings\.refresh_jitter \* /const double jitter = 0.0 * /' \
  "$unit" quick
# -- Never serve expired keys -------------------------------------------------
mutant margin-dropped sidecar/exchange/refresh_policy.cpp \
  's/return credentials\.end() - expiry_margin(credentials, settings);/return credentials.end();/' \
  "$refresh"
mutant margin-not-capped sidecar/exchange/refresh_policy.cpp \
  's/return std::min(settings\.expiry_margin, std::max(credentials\.lifetime(), Millis{0}) \/ 10);/return settings.expiry_margin;/' \
  "$refresh"
mutant renewal-not-capped-before-end sidecar/exchange/refresh_policy.cpp \
  's/return std::min(due, serve_until(credentials, settings) - expiry_margin(credentials, settings));/return due;/' \
  "$unit"
# -- Clocks: lifetime on the upstream's clock, deadlines on the monotonic one -
mutant lifetime-on-node-clock sidecar/exchange/credentials.hpp \
  's/return std::chrono::duration_cast<Millis>(expiration - upstream_date\.value_or(obtained_at));/return std::chrono::duration_cast<Millis>(expiration - obtained_at);/' \
  "$clocks"
mutant deadlines-on-wall-clock common/clock.cpp \
  's/^    return BootClock::now();$/    return SteadyTime{std::chrono::duration_cast<BootClock::duration>(std::chrono::system_clock::now().time_since_epoch())};/' \
  "$clocks"
mutant wall-step-not-restated sidecar/exchange/refresher.cpp \
  's/if (drift < k_wall_step \&\& drift > -k_wall_step) {/if (true) {/' \
  "$unit" quick
mutant date-second-kept sidecar/exchange/credentials.hpp \
  's/return sent + lifetime() - (upstream_date ? k_date_resolution : Millis{0});/return sent + lifetime();/' \
  "$unit"
mutant date-unbounded sidecar/exchange/upstream_answer.cpp \
  's/if (\*expiration - now > k_max_lifetime) {/if (false) {/' \
  "$unit" quick
mutant short-keys-loop sidecar/exchange/refresher.cpp \
  's/!cw::servable(\*result\.credentials, m_settings, now)) {/false) {/' \
  "$unit"
# -- Retries ------------------------------------------------------------------
mutant backoff-not-capped sidecar/exchange/backoff.cpp \
  's/std::min(grown, static_cast<double>(settings\.retry_max\.count()))/grown/' \
  "$unit" quick
mutant retry-after-ignored sidecar/exchange/backoff.cpp \
  's/delay += \*retry_after;/(void)delay;/' \
  "$unit" quick
mutant rejected-retried-like-retryable sidecar/exchange/backoff.cpp \
  's/if (outcome != ExchangeOutcome::rejected) {/if (true) {/' \
  "$faults"
mutant one-exchange-per-waiting-caller sidecar/exchange/refresher.cpp \
  '/^std::shared_ptr<const Served> Refresher::servable()$/,/^}/s/^    std::shared_ptr<const Served> served;$/    if (!first_attempt_done()) { step(); }\n    std::shared_ptr<const Served> served;/' \
  "$unit" quick
# -- No secret in any output --------------------------------------------------
mutant upstream-body-not-redacted sidecar/exchange/exchange_client.cpp \
  's/sanitize_excerpt(transfer\.body)/transfer.body.substr(0, 160)/' \
  "$leaks"
# -- Callers ------------------------------------------------------------------
mutant previous-token-refused sidecar/exchange/token_source.cpp \
  's/return current || (previous \&\& previous_unexpired);/return current;/' \
  "$unit" quick
mutant previous-token-past-exp-accepted sidecar/exchange/token_source.cpp \
  's/return current || (previous \&\& previous_unexpired);/return current || previous;/' \
  "$unit"
mutant token-reloads-not-serialised sidecar/exchange/token_source.cpp \
  's/std::unique_lock serialised{m_reload_mutex};/std::unique_lock serialised{m_reload_mutex, std::defer_lock};/; s/^    serialised\.unlock();/    if (serialised.owns_lock()) { serialised.unlock(); }/' \
  "$unit"
mutant inspect-sends-token-anywhere app/config.cpp \
  's/if (!config\.inspect\.sidecar_url\.empty() \&\& !is_loopback_host(url->host)) {/if (false) {/' \
  "$unit"
mutant core-dumps-allowed common/core_dumps.cpp \
  's/prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)/prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)/' \
  '-R ^integration\.test_core_dumps$'
mutant stall-allowance-fixed sidecar/exchange/refresher.cpp \
  's/return k_base + exchange_timeout;/return k_base;/' \
  "$unit"
# -- Hostile neighbours on the serving loop ----------------------------------
mutant emfile-spins common/event_http_server.cpp \
  's/^                        pause_accepting(errno);/                        (void)0;/' \
  "$unit"
mutant output-unbounded common/event_http_server.hpp \
  's/std::size_t max_pending_output = 64 \* 1024;/std::size_t max_pending_output = std::size_t{1} << 40;/' \
  "$unit"
mutant no-eviction-at-cap common/event_http_server.cpp \
  's/>= m_server\.options\.max_connections \&\& !evict_oldest_idle()) {/>= m_server.options.max_connections) {/' \
  "$unit"
mutant pipelined-turn-never-resumed common/event_http_server.cpp \
  's/^                    queue_turn(connection);/                    (void)0;/' \
  "$unit"
mutant handler-exception-escapes common/event_http_server.cpp \
  's/^            } catch (const std::exception\& error) {/            } catch (const std::bad_alloc\& error) {/; s/^            } catch (\.\.\.) {/            } catch (const std::bad_cast\&) {/' \
  "$unit"
mutant cpu-quota-ignored common/cpu_budget.cpp \
  's/usable = std::min(usable, static_cast<unsigned>(std::max(1\.0, rounded)));/(void)rounded;/' \
  "$unit"
mutant refusal-rereads-unlimited sidecar/serve/caller_auth.cpp \
  's/if (source\.changed_since_read() || m_reread\[index\]\.allow(now)) {/if (true) {/' \
  "$unit"
mutant missing-authorization-403 sidecar/serve/caller_auth.cpp \
  's/^            401, "MissingAuthorization",/            403, "MissingAuthorization",/' \
  "$hostile"
mutant no-cache-control sidecar/serve/http_server.cpp \
  's/return HttpResponse{200, "application\/json", served->body, {{"Cache-Control", "no-store"}}};/return HttpResponse{200, "application\/json", served->body, {}};/' \
  "$serve"
mutant big-head-400-not-431 common/http_request.cpp \
  's/return HttpParseError{431, "request head too large"};/return HttpParseError{400, "request head too large"};/' \
  "$hostile"
mutant startup-wait-ignored sidecar/serve/http_server.cpp \
  's/out\.park_limit = settings\.startup_wait;/out.park_limit = Millis{0};/' \
  "$startup"
# Judged by the unit tests only: under this mutant the integration test would
# start a sidecar listening on 0.0.0.0, and servers here stay on loopback.
mutant non-loopback-listen-allowed app/config.cpp \
  's/if (!config\.allow_non_loopback \&\& !is_loopback_host(config\.sidecar\.server\.host)) {/if (false) {/' \
  "$unit"

list_mutants() {
  local i
  for i in "${!names[@]}"; do
    printf '%-34s %-6s %-32s %s\n' "${names[$i]}" "${quick[$i]:--}" "${files[$i]}" "${selections[$i]}"
  done
}

chosen=()
case "${1:-}" in
  --list) list_mutants; exit 0 ;;
  --all) chosen=("${!names[@]}") ;;
  "")
    for i in "${!names[@]}"; do [[ ${quick[$i]} == quick ]] && chosen+=("$i"); done
    ;;
  *)
    for want in "$@"; do
      found=
      for i in "${!names[@]}"; do [[ ${names[$i]} == "$want" ]] && chosen+=("$i") && found=1; done
      [[ -n $found ]] || { echo "mutants: no mutant named '$want' (--list)" >&2; exit 2; }
    done
    ;;
esac

scratch=${CWCREDS_MUTANTS_DIR:-$repo/build-mutants}
src=$scratch/src build=$scratch/build logs=$scratch/logs
mkdir -p "$src" "$build" "$logs"
started=$SECONDS

# Mirror the working tree (tracked and new files, committed or not) into the
# scratch copy, touching only files that differ so the build stays incremental.
echo "mutants: copying the working tree to $src"
git -C "$repo" ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [[ -f $repo/$f ]] || continue
  if ! cmp -s "$repo/$f" "$src/$f"; then
    mkdir -p "$(dirname "$src/$f")"
    cp "$repo/$f" "$src/$f"
  fi
done

jobs=$(nproc)
build_copy() {
  cmake --build "$build" -j "$jobs" >"$1" 2>&1
}
echo "mutants: building the copy (-O0, $build)"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Mutants -DCMAKE_CXX_FLAGS_MUTANTS=-O0 \
  -DCWCREDS_WERROR=OFF >"$logs/configure.log" 2>&1 || { cat "$logs/configure.log"; exit 1; }
if ! build_copy "$logs/build.log"; then
  tail -30 "$logs/build.log"
  echo "mutants: the unmutated copy does not build" >&2
  exit 1
fi

run_selection() { # LOG SELECTION...
  local log=$1
  shift
  # shellcheck disable=SC2068 # the selection is several ctest words
  ctest --test-dir "$build" --no-tests=error --output-on-failure -j "$jobs" $@ >"$log" 2>&1
}

# The selected tests must pass before anything is mutated.
declare -A baseline_done=()
for i in "${chosen[@]}"; do
  sel=${selections[$i]}
  [[ -n ${baseline_done[$sel]:-} ]] && continue
  baseline_done[$sel]=1
  echo "mutants: baseline: ctest $sel"
  if ! run_selection "$logs/baseline.log" "$sel"; then
    grep -E "Failed|\*\*\*|tests passed" "$logs/baseline.log" | tail -15
    echo "mutants: the unmutated copy fails 'ctest $sel': fix that first" >&2
    exit 1
  fi
done

caught=0 survived=0 broken=0
for i in "${chosen[@]}"; do
  name=${names[$i]} file=${files[$i]} edit=${edits[$i]} sel=${selections[$i]}
  t0=$SECONDS
  if [[ $edit == @* ]]; then
    (cd "$src" && patch -s -p1 <"$repo/${edit#@}") >"$logs/$name.log" 2>&1 || true
  else
    sed -i -e "$edit" "$src/$file"
  fi
  if cmp -s "$repo/$file" "$src/$file"; then
    result="broken (the edit no longer applies to $file)"
    broken=$((broken + 1))
  elif ! build_copy "$logs/$name.log"; then
    result="broken (does not compile; $logs/$name.log)"
    broken=$((broken + 1))
  elif run_selection "$logs/$name.log" "$sel"; then
    result="survived"
    survived=$((survived + 1))
  else
    failing=$(sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (\(Failed\|Timeout\|SEGFAULT\|Subprocess aborted\|Exception\)).*/\1/p' \
      "$logs/$name.log" | head -3 | paste -sd, -)
    result="caught (${failing:-see $logs/$name.log})"
    caught=$((caught + 1))
  fi
  # Undo: the real file back, newer than its object so it is rebuilt.
  if [[ $edit == @* ]]; then
    while read -r patched; do
      cp "$repo/$patched" "$src/$patched" && touch "$src/$patched"
    done < <(sed -n 's|^+++ b/\(.*\)|\1|p' "$repo/${edit#@}")
  fi
  cp "$repo/$file" "$src/$file"
  touch "$src/$file"
  printf 'mutant %-34s %s  [%ss, ctest %s]\n' "$name" "$result" "$((SECONDS - t0))" "$sel"
done
# Leave the copy built as the real tree is, for the next run.
build_copy "$logs/build.log" || true

echo "mutants: ${caught} caught, ${survived} survived, ${broken} broken (${#chosen[@]} run, $((SECONDS - started))s)"
[[ $survived -eq 0 && $broken -eq 0 ]]

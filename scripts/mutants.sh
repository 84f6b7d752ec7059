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
unit='-L ^unit$'

# -- Renewal ------------------------------------------------------------------
mutant fraction-ignored app/config.cpp \
  's/c\.refresh\.refresh_fraction = fraction_value(v, 0\.01, 0\.9);/(void)fraction_value(v, 0.01, 0.9);/' \
  "$refresh"
mutant fraction-fixed-0.25 exchange/refresh_policy.cpp \
  's/lifetime_ms \* settings\.refresh_fraction \*/lifetime_ms * 0.25 */' \
  "$refresh"
mutant jitter-ignored exchange/refresh_policy.cpp \
  's/const double jitter = settings\.refresh_jitter \* /const double jitter = 0.0 * /' \
  "$unit" quick
# -- Never serve expired keys -------------------------------------------------
mutant margin-dropped exchange/refresh_policy.cpp \
  's/return credentials\.effective_expiry() - margin;/return credentials.effective_expiry();/' \
  "$refresh"
mutant margin-not-capped exchange/refresh_policy.cpp \
  's/const Millis margin = std::min(settings\.expiry_margin, .*$/const Millis margin = settings.expiry_margin;/' \
  "$refresh"
mutant skew-upstream-expiry-ignored exchange/credentials.hpp \
  's/return std::min(expiration, obtained_at + lifetime());/return obtained_at + lifetime();/' \
  '-R ^integration\.test_observability$'
# -- Retries ------------------------------------------------------------------
mutant backoff-not-capped exchange/backoff.cpp \
  's/std::min(grown, static_cast<double>(settings\.retry_max\.count()))/grown/' \
  "$unit" quick
mutant retry-after-ignored exchange/backoff.cpp \
  's/delay = std::max(delay, \*retry_after);/(void)delay;/' \
  "$unit" quick
mutant rejected-retried-like-retryable exchange/backoff.cpp \
  's/if (outcome != ExchangeOutcome::rejected) {/if (true) {/' \
  "$faults"
mutant one-exchange-per-waiting-caller exchange/refresher.cpp \
  '/^std::shared_ptr<const Served> Refresher::servable() const$/,/^}/s/^    std::shared_ptr<const Served> served;$/    if (!first_attempt_done()) { const_cast<Refresher*>(this)->step(); }\n    std::shared_ptr<const Served> served;/' \
  "$unit" quick
# -- No secret in any output --------------------------------------------------
mutant upstream-body-not-redacted exchange/exchange_client.cpp \
  's/sanitize_excerpt(transfer\.body)/transfer.body.substr(0, 160)/' \
  "$leaks"
# -- Callers ------------------------------------------------------------------
mutant previous-token-refused exchange/token_source.cpp \
  's/return current || previous;/return current;/' \
  "$unit" quick
mutant missing-authorization-403 serve/http_server.cpp \
  's/^                401, "MissingAuthorization",/                403, "MissingAuthorization",/' \
  "$hostile"
mutant no-cache-control serve/http_server.cpp \
  's/return HttpResponse{200, "application\/json", served->body, {{"Cache-Control", "no-store"}}};/return HttpResponse{200, "application\/json", served->body, {}};/' \
  "$serve"
mutant big-head-400-not-431 common/http_request.cpp \
  's/return HttpParseError{431, "request head too large"};/return HttpParseError{400, "request head too large"};/' \
  "$hostile"
mutant startup-wait-ignored serve/http_server.cpp \
  's/out\.park_limit = settings\.startup_wait;/out.park_limit = Millis{0};/' \
  "$startup"
# Judged by the unit tests only: under this mutant the integration test would
# start a sidecar listening on 0.0.0.0, and servers here stay on loopback.
mutant non-loopback-listen-allowed app/config.cpp \
  's/if (!config\.allow_non_loopback \&\& !is_loopback_host(config\.server\.host)) {/if (false) {/' \
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

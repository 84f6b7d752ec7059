#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz and runs
# each one for a bounded time, starting from its committed seed corpus
# (tests/fuzz/corpus/<target>, regression inputs included, never written to).
# (The findings are unit tests too: tests/unit/fuzz_regressions_test.cpp.)
# Exits non-zero when a target crashes, finds undefined behaviour, breaks an
# invariant or hangs.
#
#   bash scripts/fuzz.sh                                  # 30 s per target
#   CWCREDS_FUZZ_SECONDS=600 bash scripts/fuzz.sh         # longer
#   CWCREDS_FUZZ_TARGETS="fuzz_config" bash scripts/fuzz.sh
#
# New interesting inputs go to build-fuzz/corpus/<target> (kept between runs,
# so a machine's fuzzing accumulates); a crashing input to
# build-fuzz/artifacts/<target>-crash-<sha1>. To reproduce one:
#   build-fuzz/fuzz/<target> build-fuzz/artifacts/<target>-crash-<sha1>
# Ends with `fuzz total: N passed, N failed` (one test per target), which
# scripts/test.sh adds to its own count.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/progress.sh

seconds=${CWCREDS_FUZZ_SECONDS:-30}
dir=build-fuzz
all_targets="fuzz_upstream_answer fuzz_jwt_claims fuzz_config fuzz_time_parsers fuzz_http_request fuzz_admission_review fuzz_inject_yaml fuzz_log_event"
targets=${CWCREDS_FUZZ_TARGETS:-$all_targets}
jobs=$(nproc)

cc=$(command -v clang-14 || command -v clang || true)
cxx=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z "$cc" || -z "$cxx" ]]; then
  echo "fuzz: clang not found (bash scripts/install-deps.sh installs clang-14 and libclang-rt-14-dev)" >&2
  echo "fuzz total: 0 passed, 1 failed"
  exit 1
fi

echo "=== fuzz: build (${dir}, $(basename "$cxx"); about 4 minutes from scratch on 2 cores, seconds when up to date)"
if ! CC=$cc CXX=$cxx cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=CI -DCWCREDS_FUZZ=ON -DCWCREDS_TESTS=OFF >/dev/null ||
   ! run_with_progress "$dir/build.log" '^\[ *[0-9]+%\]' cmake --build "$dir" -j "$jobs" --target fuzz_all; then
  grep -E "error|Error" "$dir/build.log" | head -40 >&2
  echo "fuzz: build failed (full log: $dir/build.log)" >&2
  echo "fuzz total: 0 passed, 1 failed"
  exit 1
fi

# Compiled with -fno-sanitize-recover: any UBSan report aborts the input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

passed=0
failed=0
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# run_target NAME: replays the committed corpus, then mutates for $seconds.
run_target() {
  local name=$1
  local work="$dir/corpus/$name" seeds="tests/fuzz/corpus/$name" log="$results/$name.log"
  mkdir -p "$work" "$dir/artifacts"
  # -timeout: one input running over 10 s counts as a hang (a failure).
  "$dir/fuzz/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$name-" "$work" "$seeds" >"$log" 2>&1
  echo $? >"$results/$name.rc"
}

count=$(wc -w <<<"$targets")
echo "=== fuzz: ${seconds}s per target, ${jobs} at a time (about $(((count + jobs - 1) / jobs * seconds)) s): ${targets}"
running=0
for name in $targets; do
  echo "    ... $name"
  run_target "$name" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
done
wait

for name in $targets; do
  log="$results/$name.log"
  rc=$(cat "$results/$name.rc" 2>/dev/null || echo 1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(sed -n 's/.*DONE .* corp: \([0-9]*\)\/.*/\1/p' "$log" | tail -1)
  if [[ "$rc" == 0 ]]; then
    passed=$((passed + 1))
    echo "$name: ok, ${runs:-?} executions in ${seconds}s, corpus ${corpus:-?} inputs"
  else
    failed=$((failed + 1))
    artifact=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    echo "$name: FAILED (exit $rc) after ${runs:-?} executions; input: ${artifact:-none saved}"
    grep -E "runtime error|invariant violated|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|^    #[0-9]+ .* in (cw::|\(anonymous|LLVMFuzzer)" "$log" |
      head -14 | sed 's/^/    /'
    [[ -n "$artifact" ]] && echo "    reproduce: $dir/fuzz/$name $artifact"
  fi
done

echo "fuzz total: ${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]

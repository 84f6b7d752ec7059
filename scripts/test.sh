#!/usr/bin/env bash
# Runs every test: the unit, integration and end-to-end (tests/e2e: real AWS
# clients against moto) suites in a normal build, then the unit and integration
# suites under ASan+UBSan and under TSan, each in its own build directory.
# The normal build also runs the manifest checks (label manifests); then the
# container image is built and run once with podman (scripts/container-test.sh),
# counted as one test. The libFuzzer targets (scripts/fuzz.sh) run for a
# bounded time each, one test per target; the mutation check runs in quick
# mode (scripts/mutants.sh), one test; the benchmark runs once in smoke mode.
# The arm64 stage cross-builds for linux/arm64 and tests under qemu-user.
# Ends with each stage's wall time and one summary line over all of it.
#
#   bash scripts/test.sh            # everything (what CI runs)
#   bash scripts/test.sh --quick    # everyday loop: normal build, unit, layout, docs and integration tests only
#   CWCREDS_SANITIZERS=no bash scripts/test.sh   # the normal build only
#   CWCREDS_ARM64=no bash scripts/test.sh        # no arm64 stage, no arm64 image
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/progress.sh

quick=no
case "${1:-}" in
  --quick) quick=yes ;;
  "") ;;
  *) echo "usage: bash scripts/test.sh [--quick]" >&2; exit 2 ;;
esac

# Each stage's wall time, printed at the end: where CI's minutes go.
stage_names=()
stage_seconds=()
stage_started=$SECONDS
stage_name=""
begin_stage() {
  end_stage
  stage_name=$1
  stage_started=$SECONDS
}
end_stage() {
  if [[ -n "$stage_name" ]]; then
    stage_names+=("$stage_name")
    stage_seconds+=($((SECONDS - stage_started)))
  fi
  stage_name=""
}

begin_stage "install-deps"
echo "=== install-deps (seconds when everything is present; 5 to 10 minutes on a bare Debian 12)"
bash scripts/install-deps.sh

jobs=$(nproc)
passed=0
failed=0
skipped=0

# run_suite NAME BUILD_DIR CTEST_FILTER [cmake options...]
run_suite() {
  local name=$1 dir=$2 filter=$3
  shift 3
  begin_stage "${name}: build"
  echo "=== ${name}: build (${dir}; about 4 minutes from scratch on 2 cores, seconds when up to date)"
  # Through ccache (scripts/ccache-launcher.sh): the mutation check's scratch
  # copy and the benchmark's build reuse the normal build's objects.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=CI -DCWCREDS_WERROR=ON \
    -DCMAKE_CXX_COMPILER_LAUNCHER="$PWD/scripts/ccache-launcher.sh" "$@" >/dev/null
  progress_since=$stage_started build_with_progress "$dir" "$jobs"
  begin_stage "${name}: test"
  # ctest prints each test as it ends: the longest take 2 to 3 minutes.
  if [[ $name == normal && $filter != *unit* ]]; then
    echo "=== ${name}: test (about 5 minutes; the e2e tests first build their clients with npm ci and" \
      "go build: about a minute on a fresh machine, seconds after)"
  else
    echo "=== ${name}: test (about 5 minutes)"
  fi
  local log="$dir/ctest.log"
  set +e
  # Two tests per core: most of them wait on the sidecar's timers; the ones
  # that make load take turns (RESOURCE_LOCK in tests/CMakeLists.txt).
  # shellcheck disable=SC2086 # the filter is zero or two words
  ctest --test-dir "$dir" --output-on-failure -j "$((jobs * 2))" $filter 2>&1 | tee "$log"
  set -e
  local total fails skips
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$log" | tail -1)
  fails=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  # A test that exits with its SKIP_RETURN_CODE is listed as "(Skipped)":
  # counted apart, neither passed nor failed.
  skips=$(grep -c '^[[:space:]]*[0-9]* - .* (Skipped)$' "$log" || true)
  total=${total:-0}
  fails=${fails:-1}
  passed=$((passed + total - fails - skips))
  failed=$((failed + fails))
  skipped=$((skipped + skips))
}

print_stage_times() {
  echo
  echo "=== wall time per stage"
  local i
  for i in "${!stage_names[@]}"; do
    printf '  %-22s %4d s\n' "${stage_names[$i]}" "${stage_seconds[$i]}"
  done
  printf '  %-22s %4d s\n' "all" "$SECONDS"
}

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
# No suppressions: every race report fails the run.
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

if [[ $quick == yes ]]; then
  run_suite "normal" build "-L unit|layout|docs|integration"
  end_stage
  print_stage_times
  echo
  echo "total: ${passed} passed, ${failed} failed, ${skipped} skipped"
  [[ $failed -eq 0 ]]
  exit
fi

run_suite "normal" build ""
# The e2e suite (label e2e) drives third-party clients for minutes against the
# normal build; the sanitizer builds run the unit and integration suites.
if [[ "${CWCREDS_SANITIZERS:-yes}" != "no" ]]; then
  run_suite "asan+ubsan" build-asan "-LE e2e|manifests|docs" -DCWCREDS_ASAN=ON
  run_suite "tsan" build-tsan "-LE e2e|manifests|docs" -DCWCREDS_TSAN=ON
fi

# Fuzzing (tests/fuzz, clang in build-fuzz): each libFuzzer target for a
# bounded time (CWCREDS_FUZZ_SECONDS, default 30) plus the findings' unit
# tests, one test each. CWCREDS_FUZZING=no skips it.
if [[ "${CWCREDS_FUZZING:-yes}" != "no" ]]; then
  begin_stage "fuzz"
  fuzz_log=$(mktemp)
  set +e
  bash scripts/fuzz.sh 2>&1 | tee "$fuzz_log"
  set -e
  fuzz_passed=$(sed -n 's/^fuzz total: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$fuzz_log" | tail -1)
  fuzz_failed=$(sed -n 's/^fuzz total: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$fuzz_log" | tail -1)
  rm -f "$fuzz_log"
  passed=$((passed + ${fuzz_passed:-0}))
  failed=$((failed + ${fuzz_failed:-1}))
fi

# Mutation check, quick mode (scripts/mutants.sh): a few deliberate bugs, each
# of which the suite must catch; `bash scripts/mutants.sh --all` runs every
# one. One test. CWCREDS_MUTANTS=no skips it.
if [[ "${CWCREDS_MUTANTS:-yes}" != "no" ]]; then
  begin_stage "mutants"
  echo "=== mutants: quick mode (scripts/mutants.sh)"
  # The normal stage ran the unit and integration tests on these sources: a
  # failure there fails this run, so the mutants need not run them once more first.
  if CWCREDS_MUTANTS_BASELINE_PASSED=1 bash scripts/mutants.sh; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi

# The benchmark in smoke mode (seconds): keeps bench/ working; no timing is
# judged. One test.
begin_stage "bench smoke"
echo "=== bench: smoke run (bench/run.sh --smoke; about a minute)"
if bash bench/run.sh --smoke; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

# linux/arm64 (scripts/arm64-test.sh): the cross build with its 64 KiB page
# alignment checks (binary and every library the arm64 image ships), the
# unit suite under qemu-user (each case counts; 4 KiB guest pages: qemu 7.2's
# 64 KiB mode crashes before main, see the script), and a serve
# smoke test under qemu against the HTTPS emulator (a few integration tests;
# the script says which and why). Before the container stage, which reuses
# its binary for the arm64 image. CWCREDS_ARM64=no skips both.
if [[ "${CWCREDS_ARM64:-yes}" != "no" ]]; then
  begin_stage "arm64"
  echo "=== arm64: cross-build, unit and serve smoke tests under qemu (scripts/arm64-test.sh)"
  arm64_log=$(mktemp)
  set +e
  bash scripts/arm64-test.sh 2>&1 | tee "$arm64_log"
  set -e
  arm64_passed=$(sed -n 's/^arm64 total: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$arm64_log" | tail -1)
  arm64_failed=$(sed -n 's/^arm64 total: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$arm64_log" | tail -1)
  rm -f "$arm64_log"
  passed=$((passed + ${arm64_passed:-0}))
  failed=$((failed + ${arm64_failed:-1}))
fi

# The image: built offline with podman, run against the emulator; one test.
# With the arm64 stage, also the linux/arm64 image and the manifest list.
begin_stage "container"
echo "=== container: build and run the image (scripts/container-test.sh; about 6 minutes when the sources changed, 20 s otherwise)"
if bash scripts/container-test.sh; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi

end_stage
print_stage_times
echo
echo "total: ${passed} passed, ${failed} failed, ${skipped} skipped"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# Runs every test: the unit and integration suites in a normal build, then
# the same suites under ASan+UBSan and under TSan, each in its own build
# directory. Ends with one summary line over all three runs.
#
#   bash scripts/test.sh            # everything (what CI runs)
#   CWCREDS_SANITIZERS=no bash scripts/test.sh   # the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

jobs=$(nproc)
passed=0
failed=0

# run_suite NAME BUILD_DIR [cmake options...]
run_suite() {
  local name=$1 dir=$2
  shift 2
  echo "=== ${name}: build (${dir})"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=CI -DCWCREDS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs" 2>&1 | grep -E "error|warning" || true
  cmake --build "$dir" -j "$jobs" >/dev/null
  echo "=== ${name}: test"
  local log="$dir/ctest.log"
  set +e
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" 2>&1 | tee "$log"
  set -e
  local total fails
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$log" | tail -1)
  fails=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  total=${total:-0}
  fails=${fails:-1}
  passed=$((passed + total - fails))
  failed=$((failed + fails))
}

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

run_suite "normal" build
if [[ "${CWCREDS_SANITIZERS:-yes}" != "no" ]]; then
  run_suite "asan+ubsan" build-asan -DCWCREDS_ASAN=ON
  run_suite "tsan" build-tsan -DCWCREDS_TSAN=ON
fi

echo
echo "total: ${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]

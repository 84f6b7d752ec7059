#!/usr/bin/env bash
# The arm64 (linux/arm64, NVIDIA Grace) checks CI runs on its amd64 host:
#
# 1. Cross-builds cwcreds and unit_tests (scripts/build-arm64.sh --tests),
#    which also checks their LOAD segments are aligned to 64 KiB. One test.
# 2. Resolves the libraries the arm64 binary loads as its own loader does
#    (ld-linux-aarch64.so.1 --list under qemu; the same list the arm64 image
#    ships) and checks each is aligned to 64 KiB: one test per file.
# 3. Runs the whole doctest suite once under qemu-user; each case counts.
#    With qemu's default 4 KiB guest pages: Debian 12's qemu-aarch64-static
#    (7.2) has `-p 65536` to make AT_PAGESZ and mmap granularity 64 KiB, but
#    under it cwcreds dies of SIGSEGV in the shared libraries' constructors
#    before main (the loader, libc and a small threaded C++ program run fine
#    with it; a real 64 KiB kernel loads Debian's arm64 libraries, so this is
#    the emulation's fault). So 64 KiB pages are checked where they matter
#    to the loader, the LOAD alignment (steps 1 and 2), not by emulation.
# 4. A serve smoke test under qemu against the HTTPS emulator: a few existing
#    integration tests with CWCREDS_BIN pointing at a wrapper that execs qemu
#    (credentials served, a kubelet token rotation picked up for the next
#    exchange, SIGTERM exits 0, the drain delay). Only these: the rest of the
#    integration suites exercise the same C++ that the native and sanitizer
#    stages already cover, and many of them measure load, timeouts or
#    resource limits, which under an emulator (several times slower, signals
#    and descriptors passed through qemu) test qemu more than cwcreds. What
#    differs on arm64 (compiler, libraries, memory model, page size) shows up
#    in the unit suite and in these end-to-end paths.
#
# Cost on 2 cores: ~60 s with the arm64 build up to date (unit suite ~30 s,
# smoke ~15 s); a cold cross build adds ~580 CPU-seconds (~5 min).
#
# Prints `arm64 total: N passed, N failed` last; exit 0 only if nothing failed.
#   bash scripts/arm64-test.sh
set -uo pipefail
cd "$(dirname "$0")/.."

dir=${CWCREDS_ARM64_BUILD_DIR:-build-arm64}
qemu=(/usr/bin/qemu-aarch64-static -L /)
passed=0
failed=0
started=$SECONDS
log() { echo "=== arm64 [$((SECONDS - started))s] $*"; }
count() { # count STATUS DESCRIPTION
  if [[ $1 == 0 ]]; then passed=$((passed + 1)); echo "ok - $2"; else failed=$((failed + 1)); echo "not ok - $2"; fi
}
finish() {
  log "done"
  echo "arm64 total: ${passed} passed, ${failed} failed"
  ((failed == 0))
  exit
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ----------------------------------------------------------------- 1. build
log "cross-build cwcreds and unit_tests (scripts/build-arm64.sh --tests)"
bash scripts/build-arm64.sh --tests >"$work/build.log" 2>&1
status=$?
grep -E '^(ok|not ok) - |error|warning' "$work/build.log" || true
((status == 0)) || tail -30 "$work/build.log"
count "$status" "the arm64 build of cwcreds and unit_tests, LOAD segments aligned to 64 KiB"
((status == 0)) || finish
command -v file >/dev/null && file "$dir/cwcreds"  # the file(1) command is not in every minimal install

# --------------------------------------------------- 2. the libraries' pages
log "libraries the arm64 loader resolves for cwcreds, 64 KiB alignment"
libs=$("${qemu[@]}" /lib/ld-linux-aarch64.so.1 --list "$dir/cwcreds" 2>&1 |
  awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
if [[ -z $libs ]]; then
  count 1 "the arm64 loader lists the libraries of cwcreds"
else
  for lib in $libs; do
    bash scripts/check-page-alignment.sh "$(readlink -f "$lib")" >/dev/null
    count $? "LOAD segments of $lib aligned to 64 KiB"
  done
fi

# ------------------------------------------------------------ 3. unit tests
log "unit tests under qemu-aarch64"
# One process for the whole suite (ctest would start qemu once per case).
timeout 900 "${qemu[@]}" "$dir/tests/unit_tests" --no-version >"$work/unit.log" 2>&1
status=$?
summary=$(grep '^\[doctest\] test cases:' "$work/unit.log" | tail -1)
echo "    $summary"
unit_passed=$(sed -n 's/.*| *\([0-9]*\) passed.*/\1/p' <<<"$summary")
unit_failed=$(sed -n 's/.*| *\([0-9]*\) failed.*/\1/p' <<<"$summary")
if [[ -z $unit_passed || -z $unit_failed ]] || { ((status != 0)) && ((unit_failed == 0)); }; then
  tail -30 "$work/unit.log"
  count 1 "the unit suite under qemu ran to its summary (exit $status)"
else
  ((unit_failed == 0)) || grep -B2 -A12 'ERROR\|FAILED' "$work/unit.log" | head -80
  passed=$((passed + unit_passed))
  failed=$((failed + unit_failed))
fi

# ------------------------------------------------------- 4. serve smoke test
log "serve smoke test under qemu against the HTTPS emulator"
# The harness starts $CWCREDS_BIN and signals that PID: exec keeps qemu (which
# passes signals on to the program) as that process.
cat >"$work/cwcreds" <<WRAPPER
#!/bin/sh
exec ${qemu[*]} $PWD/$dir/cwcreds "\$@"
WRAPPER
chmod +x "$work/cwcreds"
smoke=(
  test_serve.ServeCredentials.test_container_credentials_mode_serves_the_issued_keys
  test_rotation.KubeletRotation.test_next_exchange_after_rotation_carries_the_new_token
  test_startup_shutdown.Shutdown.test_sigterm_exits_0
  test_startup_shutdown.Shutdown.test_with_a_drain_delay_keys_are_served_after_sigterm_then_it_exits_0
)
(cd tests/integration && CWCREDS_BIN=$work/cwcreds PYTHONDONTWRITEBYTECODE=1 \
  timeout 600 python3 -m unittest -v "${smoke[@]}") >"$work/smoke.log" 2>&1
status=$?
for test in "${smoke[@]}"; do
  name=${test##*.}
  if grep -q "^${name} (.*) \.\.\. ok$" "$work/smoke.log"; then count 0 "$test under qemu"; else count 1 "$test under qemu"; fi
done
((status == 0)) || tail -40 "$work/smoke.log"
finish

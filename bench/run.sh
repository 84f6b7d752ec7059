#!/usr/bin/env bash
# The cwcreds benchmark in one command, on a fresh Debian 12 machine:
#
#   bash bench/run.sh            # full run, a few minutes; writes bench/RESULTS.md
#   bash bench/run.sh --smoke    # seconds, for CI; writes build-bench/RESULTS-smoke.md
#
# It installs what it needs from Debian (the build dependencies through
# scripts/install-deps.sh, plus wrk, nginx-light and gnuplot-nox; nginx is installed with a
# temporary /usr/sbin/policy-rc.d so the system service is never started),
# builds cwcreds into build-bench/ with the CI build type (-O2 -g), the one the
# image ships (or $CWCREDS_BENCH_BUILD_TYPE),
# then hands over to bench/bench.py, which runs every server on 127.0.0.1 and
# stops each by PID. The full run also writes bench/FLEET.md and
# bench/fleet.png (bench/fleet), bench/MEMORY.md (bench/memory.py),
# bench/STARTUP.md (bench/startup.py) and bench/WEBHOOK.md (bench/webhook_bench.py); smoke mode runs the fleet simulation
# small (build-bench/FLEET-smoke.md). boto3 and moto come with the machine's Python. Any other
# argument goes to bench.py (e.g. --parts ad, --seconds 10, --calls 2000).
# Nothing here asserts a timing: a benchmark reports, tests assert.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="bash bench/run.sh${*:+ $*}"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v strip >/dev/null 2>&1 || missing+=(binutils)
command -v gnuplot >/dev/null 2>&1 || missing+=(gnuplot-nox)  # bench/fleet.png
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench: needs ${missing[*]} (apt-get install ${missing[*]}, as root)" >&2
    exit 2
  fi
  echo "bench: installing ${missing[*]}"
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    # Exit 101 = "action forbidden": the nginx package must not start the system service.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if ((created_policy)); then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
fi
if [[ $(id -u) -eq 0 ]]; then
  bash scripts/install-deps.sh
fi

build_type=${CWCREDS_BENCH_BUILD_TYPE:-CI}
echo "bench: building build-bench/cwcreds ($build_type)"
# The flags and compiler launcher of scripts/test.sh's normal build, so that
# after it the binary is linked from objects ccache already holds.
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE="$build_type" -DCWCREDS_TESTS=OFF -DCWCREDS_WERROR=ON \
  -DCMAKE_CXX_COMPILER_LAUNCHER="$PWD/scripts/ccache-launcher.sh" >/dev/null
cmake --build build-bench -j"$(nproc)" --target cwcreds fleet_sim >/dev/null

# The fleet simulation (bench/fleet): the real refresh policy for 10,000 pods
# over 24 simulated hours, or 500 pods over 2 in smoke mode (about a second).
if [[ " $* " == *" --smoke "* ]]; then
  echo "bench: fleet simulation (smoke)"
  build-bench/fleet_sim --smoke --out build-bench/FLEET-smoke.md >/dev/null
else
  echo "bench: fleet simulation, memory (smaps_rollup), start to first credential"
  build-bench/fleet_sim --series build-bench/fleet-series --out bench/FLEET.md
  gnuplot -e "series='build-bench/fleet-series'" bench/fleet/plot.gp >bench/fleet.png
  python3 bench/memory.py --bin build-bench/cwcreds | tee bench/MEMORY.md
  python3 bench/startup.py --bin build-bench/cwcreds | tee bench/STARTUP.md
  python3 bench/webhook_bench.py --bin build-bench/cwcreds | tee bench/WEBHOOK.md
fi

# exec: bench.py gets SIGTERM/SIGINT directly and stops everything it started.
exec python3 bench/bench.py --bin build-bench/cwcreds --command "$command_line" "$@"

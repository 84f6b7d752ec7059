#!/usr/bin/env bash
# Installs what building and testing cwcreds needs, from Debian 12's
# packages only. Safe to run again: it skips apt when everything is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ca-certificates curl openssl
  libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev doctest-dev
  prometheus  # for promtool: the tests check /metrics with `promtool check metrics`
  clang-14 libclang-rt-14-dev  # scripts/fuzz.sh: clang with libFuzzer and its sanitizers
  libfaketime  # tests/integration/test_clocks.py: steps the sidecar's wall clock, not its monotonic one
  gnuplot-nox  # bench/run.sh draws the fleet simulation's upstream rate (bench/fleet.png)
)
# Extra packages a caller asks for (e.g. the e2e suite's nodejs).
packages+=("$@")

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

# The e2e suite drives the AWS SDK for JavaScript: it needs node and
# npm. Checked by command, not by package name: a machine whose Node.js comes
# from elsewhere (NodeSource bundles npm into its nodejs package) already has
# both, and Debian's npm package would conflict with it.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

# The tests' Python needs cryptography and requests; a machine without
# them gets Debian's python3 with both.
if ! python3 -c 'import cryptography, requests' 2>/dev/null; then
  missing+=(python3 python3-cryptography python3-requests)
fi

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Installs what building and testing cwcreds needs, from Debian 12's
# packages only. Safe to run again: it skips apt when everything is there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/progress.sh"

packages=(
  build-essential cmake pkg-config ca-certificates curl openssl
  libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev doctest-dev
  libyaml-cpp-dev  # `cwcreds inject` reads and writes Kubernetes YAML
  prometheus  # for promtool: the tests check /metrics with `promtool check metrics`
  clang-14 libclang-rt-14-dev  # scripts/fuzz.sh: clang with libFuzzer and its sanitizers
  libfaketime  # tests/integration/test_clocks.py: steps the sidecar's wall clock, not its monotonic one
  gnuplot-nox  # bench/run.sh draws the fleet simulation's upstream rate (bench/fleet.png)
  ccache  # the mutation check's scratch copy and the benchmark reuse the normal build's objects
  slowhttptest  # tests/integration/test_slow_clients.py: a real slow-HTTP attack tool against both listeners
  zsh  # tests/integration/test_config.py: `cwcreds completion zsh` must load in a real zsh
)
# The e2e compatibility matrix (tests/e2e/test_matrix.py) runs each of these
# through the sidecar: AWS CLI v2 (/usr/bin/aws), rclone, restic, Go programs
# built offline against aws-sdk-go-v2 1.17 and aws-sdk-go 1.44 (v1, the SDK
# s5cmd pins, which sends only a static AWS_CONTAINER_AUTHORIZATION_TOKEN),
# and Ruby's aws-sdk-s3.
packages+=(
  awscli rclone restic ruby-aws-sdk-s3
  golang-go golang-github-aws-aws-sdk-go-v2-dev golang-github-aws-aws-sdk-go-dev
)
# The arm64 cross build (cross compiler, qemu-user-static, the :arm64 -dev
# packages) is installed by scripts/build-arm64.sh, which the arm64 CI stage
# runs: it also adds dpkg's arm64 architecture, which nothing else needs.
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

# The webhook's corpus test reads the pods of tests/fixtures/inject/corpus
# with PyYAML (YAML 1.1, as kubectl reads them).
if ! python3 -c 'import yaml' 2>/dev/null; then
  missing+=(python3-yaml)
fi

# The demo and the e2e suite drive boto3 and moto_server from the python3 on
# PATH. A machine without boto3 gets Debian's; Debian 12 has no moto package
# (and nothing here installs from PyPI), so its absence is reported, not
# fixed: the demo then uses its S3 stand-in (tests/e2e/s3_standin.py).
if ! python3 -c 'import boto3' 2>/dev/null; then
  missing+=(python3-boto3)
fi
if ! command -v moto_server >/dev/null 2>&1; then
  echo "install-deps: moto_server not found: the e2e suite needs moto (not packaged in Debian 12);" \
    "the demo uses its S3 stand-in" >&2
fi

# apt prints nothing worth reading for minutes (about 400 packages and 5 to
# 10 minutes on a bare Debian 12): the package dpkg is at, every 30 s.
apt_with_progress() {
  local log status=0
  log=$(mktemp)
  run_with_progress "$log" '^(Unpacking|Setting up) [^ ]+' "$@" || status=$?
  ((status == 0)) || tail -30 "$log" >&2
  rm -f "$log"
  return "$status"
}

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]} (apt: seconds for a few packages, 5 to 10 minutes on a bare Debian 12)"
  export DEBIAN_FRONTEND=noninteractive
  apt_with_progress apt-get update -qq
  apt_with_progress apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

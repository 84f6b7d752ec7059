#!/usr/bin/env bash
# Installs what building and testing cwcreds needs, from Debian 12's
# packages only. Safe to run again: it skips apt when everything is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ca-certificates curl openssl
  libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev doctest-dev
)
# Extra packages a caller asks for (e.g. the e2e suite's nodejs).
packages+=("$@")

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

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

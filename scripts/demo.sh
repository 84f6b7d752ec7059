#!/usr/bin/env bash
# The demo: installs what it needs, builds cwcreds, runs the real sidecar
# against a local HTTPS emulator of CoreWeave that hands out real keys for a
# local S3 (moto), runs `aws s3 cp` through it, then stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
echo "=== building cwcreds"
# Same build type as scripts/test.sh, so the two share build/ without rebuilding.
cmake -S . -B build -DCMAKE_BUILD_TYPE=CI -DCWCREDS_WERROR=ON >/dev/null
cmake --build build -j "$(nproc)" --target cwcreds >/dev/null
exec python3 scripts/demo.py

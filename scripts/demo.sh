#!/usr/bin/env bash
# The demo: installs what it needs, builds cwcreds, and runs the real sidecar
# against a local HTTPS emulator of CoreWeave, then stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
echo "=== building cwcreds"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target cwcreds >/dev/null
exec python3 scripts/demo.py

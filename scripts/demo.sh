#!/usr/bin/env bash
# The demo: installs what it needs, builds cwcreds, runs the real sidecar
# against a local HTTPS emulator of CoreWeave that hands out real keys for a
# local S3 (moto), runs `aws s3 cp` through it, then stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/progress.sh

echo "=== installing what the demo needs (scripts/install-deps.sh: seconds when present, 5 to 10 minutes on a bare Debian 12)"
bash scripts/install-deps.sh
echo "=== building cwcreds (about 3.5 minutes from scratch on 2 cores, seconds when up to date; progress every 30 s)"
build_started=$SECONDS
# Same build type as scripts/test.sh, so the two share build/ without rebuilding.
cmake -S . -B build -DCMAKE_BUILD_TYPE=CI -DCWCREDS_WERROR=ON >/dev/null
progress_since=$build_started build_with_progress build "$(nproc)" --target cwcreds
echo "=== running the demo (about 20 seconds)"
exec python3 scripts/demo.py

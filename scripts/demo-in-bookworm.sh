#!/usr/bin/env bash
# The quick start's promise, checked: `bash scripts/demo.sh` as root on a bare
# Debian 12, with nothing installed but what the demo installs itself.
#
#   bash scripts/demo-in-bookworm.sh    # as root on Debian 12; about 10 minutes
#
# Runs the demo in docker.io/library/debian:bookworm, the debootstrap minbase
# image scripts/container-test.sh makes (made here when missing), on a copy
# of this tree at HEAD. The container shares the host's network so apt reaches
# the mirror this machine uses; everything the demo starts listens on
# 127.0.0.1 and stops with it. Debian 12 packages no moto, so the demo runs
# against its S3 stand-in, with Debian's boto3 and AWS CLI v2.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/container-test.sh --base-images
work=$(mktemp -d)
name=cwcreds-demo-in-bookworm-$$
cleanup() {
  podman --runtime runc rm -f "$name" >/dev/null 2>&1 || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
git archive HEAD | tar -x -C "$work"
timeout 3600 podman --runtime runc run --rm --name "$name" --network host -v "$work:/src" -w /src \
  docker.io/library/debian:bookworm bash scripts/demo.sh

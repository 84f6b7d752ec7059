#!/usr/bin/env bash
# CTest entry for the `manifests` label (tests/CMakeLists.txt): installs the
# pinned npm packages with `npm ci` (again only when package-lock.json
# changed) and runs every *.test.mjs here (manifests.test.mjs: the rendered
# overlays; injection.test.mjs: the component, `cwcreds inject`, the webhook;
# monitoring.test.mjs: the dashboard and PodMonitors)
# with node's test runner. Needs node, npm and kubectl with kustomize v5
# (Components, replacements); nothing else is fetched.
set -euo pipefail
[[ -n ${CWCREDS_BIN:-} ]] && CWCREDS_BIN=$(realpath "$CWCREDS_BIN") && export CWCREDS_BIN
cd "$(dirname "$0")"

for tool in node npm "${KUBECTL:-kubectl}"; do
  if ! command -v "$tool" >/dev/null; then
    echo "manifests: '$tool' is not installed (node and npm: scripts/install-deps.sh; kubectl: the machine image)" >&2
    exit 1
  fi
done
kustomize=$("${KUBECTL:-kubectl}" version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
if [[ -z $kustomize || $kustomize -lt 5 ]]; then
  echo "manifests: kubectl embeds kustomize v${kustomize:-?}; Components and replacements need v5 (kubectl >= 1.27)" >&2
  exit 1
fi

stamp=node_modules/.cwcreds-package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  timeout 600 npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
# A check node skips is reported to CTest as skipped (exit 77,
# SKIP_RETURN_CODE), not as a pass.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
timeout 300 node --test ./*.test.mjs 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if ((rc == 0)) && grep -qE '^# skip(ped)? [1-9]' "$out"; then
  echo "manifests: SKIPPED: some checks did not run (see '# SKIP' above)" >&2
  exit 77
fi
exit "$rc"

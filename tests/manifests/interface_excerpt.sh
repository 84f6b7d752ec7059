#!/usr/bin/env bash
# CTest entry `manifests.interface_excerpt`: the lines of interface.md that
# tests/manifests relies on are copied into interface-excerpt.txt; this checks
# that each copied line still appears, verbatim, in interface.md. The contract
# lives beside the repository (../shared/spec/interface.md, or one level up
# for a worktree) on the machines
# that have it; elsewhere the check cannot run and says so: exit 77, which
# CTest reports as skipped (SKIP_RETURN_CODE), never as a pass.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
spec=${CWCREDS_INTERFACE_MD:-}
if [[ -z $spec ]]; then
  for candidate in "$repo/../shared/spec/interface.md" "$repo/../../shared/spec/interface.md"; do
    [[ -f $candidate ]] && spec=$candidate && break
  done
fi
if [[ -z $spec || ! -f $spec ]]; then
  echo "SKIPPED: no interface.md in ${spec:-../shared/spec or ../../shared/spec beside the repository};" \
    "interface-excerpt.txt was not compared with the contract" >&2
  exit 77
fi
missing=0
while IFS= read -r line; do
  [[ -z $line || $line == \#* ]] && continue
  if ! grep -qxF -- "$line" "$spec"; then
    echo "interface-excerpt.txt: not in $spec: $line" >&2
    missing=$((missing + 1))
  fi
done <"$here/interface-excerpt.txt"
if ((missing)); then
  echo "interface_excerpt: $missing line(s) differ from the contract; update interface-excerpt.txt and the manifests" >&2
  exit 1
fi
echo "interface_excerpt: every line matches $spec"

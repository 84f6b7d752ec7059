#!/usr/bin/env bash
# Checks that every LOAD segment of each ELF file given is aligned to at least
# 64 KiB (0x10000), so it loads on arm64 kernels with 64 KiB pages (NVIDIA
# Grace's default), where a file linked for 4 KiB pages fails with "ELF load
# command address/offset not page-aligned". One line per file; exit 1 if any
# file has a smaller alignment (or no LOAD segment).
#
#   bash scripts/check-page-alignment.sh build-arm64/cwcreds /usr/lib/aarch64-linux-gnu/libc.so.6
set -euo pipefail
status=0
for file in "$@"; do
  # The Align column is the last field of each LOAD line of `readelf -lW`.
  aligns=$(readelf -lW "$file" 2>/dev/null | awk '$1 == "LOAD" { print $NF }' | sort -u | tr '\n' ' ')
  smallest=$(for a in $aligns; do printf '%d\n' "$a"; done | sort -n | head -1)
  if [[ -n $smallest ]] && ((smallest >= 0x10000)); then
    echo "ok - LOAD segments aligned to ${aligns% } (>= 0x10000): $file"
  else
    echo "not ok - LOAD segments aligned to ${aligns:-none} (< 0x10000): $file"
    status=1
  fi
done
exit "$status"

#!/usr/bin/env bash
# Lays out the runtime tree of the linux/arm64 image in DIR, without running
# anything arm64 but the loader's --list under qemu-user: the cross-built
# binary (stripped), exactly the shared libraries the arm64 loader resolves
# for it, copied from the :arm64 packages installed on this host
# (/usr/lib/aarch64-linux-gnu: libc6:arm64, libcurl4:arm64, ... at their
# Debian versions, the loader included), Debian's CA bundle, and passwd/group
# entries for 65532. The same tree the Dockerfile's build stage makes for
# amd64; Dockerfile.assembled puts it on scratch.
#
#   bash scripts/arm64-rootfs.sh DIR   # builds build-arm64/cwcreds first if it is missing
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash scripts/arm64-rootfs.sh DIR}
dir=${CWCREDS_ARM64_BUILD_DIR:-build-arm64}
binary=$dir/cwcreds
if [[ ! -x $binary ]]; then
  bash scripts/build-arm64.sh
fi

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs"
aarch64-linux-gnu-strip -o "$out/usr/local/bin/cwcreds" "$binary"
chmod 0755 "$out/usr/local/bin/cwcreds"
# As the Dockerfile does with ldd: the paths the loader names, the loader
# itself included; -L / makes it this host's libc6:arm64 loader, which
# searches the multiarch directories as it will in the image.
libs=$(/usr/bin/qemu-aarch64-static -L / /lib/ld-linux-aarch64.so.1 --list "$binary" |
  awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -n $libs ]] || { echo "arm64-rootfs: the loader listed no libraries" >&2; exit 1; }
for lib in $libs; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$out/etc/ssl/certs/ca-certificates.crt"
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >"$out/etc/passwd"
echo 'nonroot:x:65532:' >"$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/ssl/certs/ca-certificates.crt"

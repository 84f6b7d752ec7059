#!/usr/bin/env bash
# Cross-builds cwcreds for 64-bit Arm Linux (linux/arm64, e.g. NVIDIA Grace)
# on an amd64 Debian 12 host, from Debian's packages only.
#
#   bash scripts/build-arm64.sh          # build-arm64/cwcreds
#   bash scripts/build-arm64.sh --tests  # also build-arm64/tests/unit_tests
#
# 1. Adds the arm64 architecture to dpkg and installs Debian's cross compiler
#    (crossbuild-essential-arm64), qemu-user-static (runs the arm64 programs:
#    CMake's test discovery, the unit tests, the checks) and the :arm64 -dev
#    packages the build links; skipped when all are present. libyaml-cpp-dev
#    is the exception: it is not Multi-Arch: same, so installing its :arm64
#    package would remove the native one (and break every native build on the
#    machine). Its arm64 .deb is fetched with `apt-get download` and unpacked
#    into the build directory instead (BUILD_DIR/arm64-prefix), which CMake
#    searches first.
# 2. Configures build-arm64 with cmake/aarch64-linux-gnu.cmake (build type
#    CI, warnings as errors, as the native build) and builds only the targets
#    asked for (the benchmark and fuzz targets are not built).
# 3. Checks that every LOAD segment of what it built is aligned to 64 KiB
#    (`readelf -lW`), so the binary loads on kernels with 64 KiB pages.
#
# Environment: CWCREDS_ARM64_BUILD_DIR (default build-arm64). The native build
# (build/) is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(cwcreds)
case "${1:-}" in
  --tests) targets+=(unit_tests) ;;
  "") ;;
  *) echo "usage: bash scripts/build-arm64.sh [--tests]" >&2; exit 2 ;;
esac
dir=${CWCREDS_ARM64_BUILD_DIR:-build-arm64}

# ------------------------------------------------------------- 1. packages
# Multi-Arch: same libraries must be the same version for amd64 and arm64;
# apt keeps them in step when both come from the same sources.
packages=(
  crossbuild-essential-arm64  # aarch64-linux-gnu-g++ and binutils
  qemu-user-static            # runs arm64 programs on this host (tests, checks, the image's checks)
  cmake pkg-config
  nlohmann-json3-dev doctest-dev  # header-only, Architecture: all
  libcurl4-openssl-dev:arm64 libssl-dev:arm64 libspdlog-dev:arm64 libfmt-dev:arm64
  libcpp-httplib-dev:arm64
  libyaml-cpp0.7:arm64  # the runtime library only: see below for its -dev package
  zlib1g-dev:arm64 libbrotli-dev:arm64  # cpp-httplib.pc requires zlib and brotli
)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "build-arm64: dpkg --add-architecture arm64"
  dpkg --add-architecture arm64
  apt_update=yes
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})) || [[ ${apt_update:-} == yes ]]; then
  echo "build-arm64: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libyaml-cpp-dev:arm64, unpacked beside the build (never installed), with
# its runtime package of the same version, so its CMake config's relative
# paths resolve inside the prefix. The binary links libyaml-cpp.so.0.7, which
# at run time is libyaml-cpp0.7:arm64's copy in /usr/lib/aarch64-linux-gnu:
# no build RPATH, so nothing points into this prefix (nor into the image).
prefix=$PWD/$dir/arm64-prefix
yaml_version=$(dpkg-query -W -f='${Version}' libyaml-cpp0.7:arm64)
if [[ $(cat "$prefix/.yaml-cpp-version" 2>/dev/null) != "$yaml_version" ]]; then
  echo "build-arm64: unpacking libyaml-cpp-dev:arm64 $yaml_version into $prefix"
  rm -rf "$prefix" && mkdir -p "$prefix/debs"
  # apt's download sandbox user must be able to write there.
  chmod 0777 "$prefix/debs"
  (cd "$prefix/debs" && apt-get download -q \
    "libyaml-cpp-dev:arm64=$yaml_version" "libyaml-cpp0.7:arm64=$yaml_version" >/dev/null)
  for deb in "$prefix"/debs/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
  rm -rf "$prefix/debs" "$prefix/usr/share"
  echo "$yaml_version" >"$prefix/.yaml-cpp-version"
fi

# ---------------------------------------------------------------- 2. build
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$PWD/scripts/ccache-launcher.sh")
fi
# -O2 without -g: the image strips the binary, so its code is the same, and
# debug info was a fifth of each file's compile time (http_server.cpp: 6.6 s
# against 5.3 s). CWCREDS_ARM64_CXX_FLAGS="-O2 -g" to debug under qemu.
cmake -S . -B "$dir" --toolchain "$PWD/cmake/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=CI -DCMAKE_CXX_FLAGS_CI="${CWCREDS_ARM64_CXX_FLAGS:--O2}" \
  -DCWCREDS_WERROR=ON -DCWCREDS_BENCH=OFF \
  -DCMAKE_PREFIX_PATH="$prefix/usr" -DCMAKE_SKIP_BUILD_RPATH=ON "${launcher[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" --target "${targets[@]}"

# ------------------------------------------------- 3. 64 KiB page alignment
status=0
for target in "${targets[@]}"; do
  file=$dir/$target
  [[ $target == unit_tests ]] && file=$dir/tests/unit_tests
  bash scripts/check-page-alignment.sh "$file" || status=1
done
exit "$status"

# Cross-compiling cwcreds for 64-bit Arm Linux (e.g. NVIDIA Grace) on an amd64
# Debian 12 host, with Debian's cross compiler (crossbuild-essential-arm64)
# and the :arm64 multiarch -dev packages in /usr/lib/aarch64-linux-gnu.
# scripts/build-arm64.sh installs both and uses this file:
#
#   cmake -S . -B build-arm64 --toolchain cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# find_package/find_library look in the multiarch directory of the target
# (/usr/lib/aarch64-linux-gnu), never in the host's amd64 one.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config (cpp-httplib) reads the arm64 .pc files only.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
# Test discovery (doctest_discover_tests lists the cases at build time) and
# ctest run the arm64 programs through user-mode qemu. `-L /`: the loader and
# libc are libc6:arm64's (/lib/ld-linux-aarch64.so.1, /lib/aarch64-linux-gnu,
# the same files the image ships), not the cross-compiler's copy in
# /usr/aarch64-linux-gnu, whose glibc is an older Debian revision than the
# libc6:arm64 the other :arm64 libraries come with; mixing the two loaders
# and libcs is not supported by glibc.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-aarch64-static -L /)
# Arm64 kernels may use 16 KiB or 64 KiB pages (NVIDIA Grace: 64 KiB): every
# LOAD segment must be aligned to 64 KiB or the loader refuses the binary.
# GNU ld's default for aarch64 is already 0x10000; saying it keeps it so.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-z,max-page-size=0x10000")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-z,max-page-size=0x10000")

# cwcreds container image.
#
# Stage 1 builds the binary exactly as CI does (CMake, build type CI: -O2 -g,
# warnings as errors) and runs the unit tests; the image is only produced when they
# pass. It then gathers the runtime tree: the stripped binary, exactly the
# shared libraries it loads (as ldd resolves them, the dynamic loader
# included), Debian's CA bundle for https://api.coreweave.com, and passwd/group
# entries for 65532. Stage 2 is that tree on `scratch`: no shell, no package
# manager, nothing the binary does not read. It runs as 65532:65532 and its
# ENTRYPOINT is in exec form, so no shell is ever needed at run time.
#
#   podman build --pull=never --network host -t cwcreds .   # what scripts/container-test.sh runs
#   docker build -t cwcreds .
#
# The build stage takes its base from a build argument so a mirror or a pinned
# digest can be used without editing this file.
ARG BUILD_IMAGE=docker.io/library/debian:bookworm

FROM ${BUILD_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# The same Debian packages as scripts/install-deps.sh; python3-minimal only
# because tests/CMakeLists.txt looks for an interpreter (the Python
# integration suites are not copied in and do not run here).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      libcpp-httplib-dev libcurl4-openssl-dev libssl-dev \
      nlohmann-json3-dev libspdlog-dev libfmt-dev doctest-dev libyaml-cpp-dev python3-minimal ccache \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore admits only what the build and the unit tests read.
COPY CMakeLists.txt ./
# The unit tests compare the settings table with the flag table in the docs.
COPY docs/reference.md docs/
COPY common/ common/
COPY app/ app/
COPY sidecar/ sidecar/
COPY inject/ inject/
COPY webhook/ webhook/
COPY tests/CMakeLists.txt tests/
COPY tests/unit/ tests/unit/
# The mutation's unit tests compare it with the component and its corpus.
COPY tests/fixtures/ tests/fixtures/
COPY manifests/components/ manifests/components/
# The CI build type is -O2 -g with assertions on; the grep fails the build if
# the compile commands ever lose the optimisation again.
# A compiler cache mounted at /ccache is used when present: CI lends the one
# its normal build just filled (`podman build -v "$PWD/.ccache:/ccache"`),
# the same sources, compiler and flags, so nothing is compiled twice. Without
# the mount the build compiles everything, as before.
RUN if [ -d /ccache ]; then \
      export CCACHE_DIR=/ccache CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=1; \
      unset LANG LC_ALL LC_CTYPE LC_MESSAGES; \
      set -- -DCMAKE_CXX_COMPILER_LAUNCHER=ccache; \
    fi \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=CI -DCWCREDS_WERROR=ON "$@" \
 && grep -q -- ' -O2 -g ' build/compile_commands.json \
 && cmake --build build -j "$(nproc)" --target cwcreds unit_tests \
 && ctest --test-dir build -L unit --no-tests=error --output-on-failure -j "$(nproc)" \
 && build/cwcreds --version \
 && install -D -m 0755 -s build/cwcreds /out/cwcreds

# The runtime tree. Libraries keep the paths ldd names (the loader finds them
# in its default directories; there is no ld.so.cache); /etc/passwd and
# /etc/group name 65532 so tools that look the user up find it.
RUN set -eu \
 && mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs \
 && cp /out/cwcreds /rootfs/usr/local/bin/cwcreds \
 && for lib in $(ldd /out/cwcreds | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do \
      mkdir -p "/rootfs$(dirname "$lib")" && cp -L "$lib" "/rootfs$lib"; \
    done \
 && cp -L /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin' >/rootfs/etc/passwd \
 && echo 'nonroot:x:65532:' >/rootfs/etc/group \
 && chmod 0644 /rootfs/etc/passwd /rootfs/etc/group /rootfs/etc/ssl/certs/ca-certificates.crt

FROM scratch
COPY --from=build /rootfs/ /
# Declared here, after the COPY, so a new revision does not rebuild the layers above.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="cwcreds" \
      org.opencontainers.image.description="CoreWeave AI Object Storage credentials sidecar: exchanges the pod's projected service-account token and serves S3 keys on 127.0.0.1:9911 in the AWS container-credentials format" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# Numeric user and group: Kubernetes' runAsNonRoot can verify a numeric USER,
# and `USER 65532` alone would leave the group at 0.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cwcreds"]
CMD ["serve"]

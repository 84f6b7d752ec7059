# cwcreds container image.
#
# Stage 1 builds the binary exactly as CI does (CMake, build type CI: -O2 -g,
# warnings as errors) and runs the unit tests; the image is only produced when they
# pass. Stage 2 is debian:bookworm-slim with the shared libraries the binary
# links and the CA certificates, nothing else: it runs as 65532:65532 and its
# ENTRYPOINT is in exec form, so no shell is ever needed at run time.
#
#   podman build --pull=never --network host -t cwcreds .   # what scripts/container-test.sh runs
#   docker build -t cwcreds .
#
# Both stages take their base from build arguments so a mirror or a pinned
# digest can be used without editing this file.
ARG BUILD_IMAGE=docker.io/library/debian:bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# The same Debian packages as scripts/install-deps.sh; python3-minimal only
# because tests/CMakeLists.txt looks for an interpreter (the Python
# integration suites are not copied in and do not run here).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      libcpp-httplib-dev libcurl4-openssl-dev libssl-dev \
      nlohmann-json3-dev libspdlog-dev libfmt-dev doctest-dev libyaml-cpp-dev python3-minimal \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .dockerignore admits only what the build and the unit tests read.
COPY CMakeLists.txt README.md ./
COPY common/ common/
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
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=CI -DCWCREDS_WERROR=ON \
 && grep -q -- ' -O2 -g ' build/compile_commands.json \
 && cmake --build build -j "$(nproc)" --target cwcreds unit_tests \
 && ctest --test-dir build -L unit --no-tests=error --output-on-failure -j "$(nproc)" \
 && build/cwcreds --version \
 && install -D -m 0755 -s build/cwcreds /out/cwcreds

FROM ${RUNTIME_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# Exactly the runtime libraries `ldd cwcreds` names (plus their dependencies)
# and the system trust store for https://api.coreweave.com.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libcpp-httplib0.11 libspdlog1.10 libfmt9 libssl3 libyaml-cpp0.7 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
      /var/cache/debconf/*-old
COPY --from=build /out/cwcreds /usr/local/bin/cwcreds
# Declared here, after the RUN, so a new revision does not rebuild the layers above.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="cwcreds" \
      org.opencontainers.image.description="CoreWeave AI Object Storage credentials sidecar: exchanges the pod's projected service-account token and serves S3 keys on 127.0.0.1:9911 in the AWS container-credentials format" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# Numeric user and group: Kubernetes' runAsNonRoot can verify a numeric USER,
# and `USER 65532` alone would leave the group at 0.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cwcreds"]
CMD ["serve"]

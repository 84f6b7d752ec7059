#!/usr/bin/env bash
# Builds the cwcreds image with podman, offline, and runs it.
#
#   bash scripts/container-test.sh                # as root on Debian 12 (what CI runs)
#   bash scripts/container-test.sh --base-images  # steps 1 and 2 only
#
# 1. Installs Debian's podman, buildah, runc, debootstrap, fuse-overlayfs,
#    uidmap and containernetworking-plugins (skipped when present) and
#    configures /etc/containers/containers.conf for this kind of host (runc:
#    crun fails on its cgroups; ulimits the host allows; no systemd).
# 2. No registry is reachable, so the base images are made here: debootstrap
#    --variant=minbase bookworm from the mirror apt is configured with, imported
#    as docker.io/library/debian:bookworm and, trimmed like the official slim
#    image, as docker.io/library/debian:bookworm-slim. Skipped when both exist.
# 3. podman build --pull=never --network host (the build stage compiles and
#    runs the unit tests).
# 4. Runs the image: `--version`; its file list (exactly the binary, the
#    libraries the image's own loader resolves for it, the CA bundle and
#    passwd/group); the image's metadata (user, exec-form
#    entrypoint, OCI labels); then `serve` on the host network with the
#    restricted settings the manifests use (read-only root, no capabilities,
#    no-new-privileges) against the HTTPS emulator started here on 127.0.0.1,
#    with the CA file, a kubelet-style token directory and the
#    legacy-clients caller token (root-owned, the manifest's defaultMode)
#    bind-mounted read-only; fetches /v1/credentials with the token and
#    with the caller token as Authorization (200 + JSON), /healthz and /readyz on both listeners (the probe listener,
#    which the manifests' kubelet probes use, must 404 on credentials); runs
#    `cwcreds inspect --sidecar` in it with `podman exec`; checks the
#    process runs as 65532:65532 with no capabilities; stops it with
#    SIGTERM, expects credentials served during the drain delay, then exit 0.
#
# 3b/4/5. Unless CWCREDS_ARM64=no: the linux/arm64 image, assembled without
#    emulated RUN steps (scripts/arm64-rootfs.sh: the cross-built binary,
#    reused from build-arm64 when there, and the :arm64 packages' libraries;
#    Dockerfile.assembled: scratch); step 4's checks on it too, run through
#    qemu-user by binfmt_misc (mounted and registered here when missing);
#    then the manifest list CWCREDS_MANIFEST (one tag, linux/amd64 and
#    linux/arm64) and a check that it names both. Prints both images' sizes.
#
# Everything it starts (emulator, containers) is stopped by PID or name on
# exit. Every step is bounded by a timeout. Exit status 0 only if every check
# passed. Environment: CWCREDS_IMAGE (default localhost/cwcreds:ci),
# CWCREDS_IMAGE_ARM64 (default $CWCREDS_IMAGE-arm64), CWCREDS_MANIFEST
# (default $CWCREDS_IMAGE-multiarch), CWCREDS_ARM64.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/progress.sh

image=${CWCREDS_IMAGE:-localhost/cwcreds:ci}
base_full=docker.io/library/debian:bookworm
base_slim=docker.io/library/debian:bookworm-slim
default_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin  # as in the official images
started=$SECONDS
checks=0
failures=0
work=""
emulator_pid=""
containers=()

log() { echo "=== container-test [$((SECONDS - started))s] $*"; }
ok() { checks=$((checks + 1)); echo "ok - $*"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else not_ok "$what"; fi
}
podman_() { podman --runtime runc "$@"; }

cleanup() {
  local name
  for name in "${containers[@]}"; do
    timeout 30 podman --runtime runc rm -f -t 2 "$name" >/dev/null 2>&1 || true
  done
  if [[ -n $emulator_pid ]] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill -TERM "$emulator_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$emulator_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  if [[ -n $work ]]; then
    # debootstrap's mounts in the tree, if a failure left any: never cross them.
    awk -v r="$work/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" || true
    done
    rm -rf --one-file-system "$work"
  fi
  return 0
}
trap cleanup EXIT
# Scratch space (logs, the emulator's files, the debootstrap tree), removed on exit.
work=$(mktemp -d /var/tmp/cwcreds-container-test.XXXXXX)

# ---------------------------------------------------------------- 1. tools
log "installing podman and friends (skipped when present; about 2 minutes otherwise)"
timeout 900 bash scripts/install-deps.sh \
  podman buildah runc debootstrap fuse-overlayfs uidmap containernetworking-plugins \
  qemu-user-static binfmt-support  # the arm64 image's checks run it through qemu-user

conf=/etc/containers/containers.conf
marker="# written by cwcreds scripts/container-test.sh"
if [[ ! -e $conf ]] || grep -qxF "$marker" "$conf"; then
  mkdir -p /etc/containers
  cat >"$conf" <<EOF
$marker
# crun fails on this host's cgroups; podman's default nofile ulimit is above
# the host's hard limit; there is no systemd (cgroupfs, events to a file).
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
else
  log "keeping the existing $conf (not ours); passing --runtime runc explicitly"
fi

# ---------------------------------------------------------- 2. base images
# The first `deb` source for the suite bookworm (one-line or deb822 format);
# the same for bookworm-security, so the images get security updates too.
apt_mirror() { # apt_mirror SUITE
  local suite=$1 files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  files+=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  for file in "${files[@]}"; do
    [[ -f $file ]] || continue
    case $file in
      *.list)
        awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
             if ($(i + 1) == s) { print $i; exit } }' "$file" ;;
      *.sources)
        awk -v s="$suite" 'function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && uri != "" && !done) { print uri; done = 1 } types = suites = uri = "" }
             /^[[:space:]]*$/ { flush(); next } /^#/ { next }
             tolower($1) == "types:" { $1 = ""; types = $0 } tolower($1) == "suites:" { $1 = ""; suites = $0 }
             tolower($1) == "uris:" { uri = $2 } END { flush() }' "$file" ;;
    esac
  done | awk 'NR == 1'  # reads all: no SIGPIPE under pipefail
}

if podman_ image exists "$base_full" && podman_ image exists "$base_slim"; then
  log "base images present: $base_full, $base_slim"
else
  mirror=$(apt_mirror bookworm)
  security=$(apt_mirror bookworm-security)
  # The mirror comes from this machine's apt configuration only: behind a
  # company mirror, any built-in default would be the wrong one.
  if [[ -z $mirror ]]; then
    echo "container-test: no 'deb' source for bookworm in /etc/apt/sources.list or /etc/apt/sources.list.d;" \
      "add the mirror this machine should use and run again" >&2
    exit 1
  fi
  log "debootstrap --variant=minbase bookworm from $mirror (first run only: a few minutes, then the images are kept)"
  rootfs=$work/rootfs
  debootstrap_ok=yes
  run_with_progress "$work/debootstrap.log" '^I: [A-Za-z]+ [^ ]*' timeout 900 debootstrap --variant=minbase bookworm \
    "$rootfs" "$mirror" || debootstrap_ok=no
  # debootstrap mounts /proc, /sys (and may bind /dev) in the target; never
  # leave them behind, and never let rm cross into them.
  awk -v r="$rootfs" 'index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  if awk -v r="$rootfs" 'index($2, r "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "container-test: mounts left under $rootfs; not touching it" >&2
    work=""  # keep cleanup away from it too
    exit 1
  fi
  if [[ $debootstrap_ok != yes ]]; then
    tail -20 "$work/debootstrap.log"
    echo "container-test: debootstrap failed" >&2
    exit 1
  fi
  # What the official images carry: deb822 sources (with security updates),
  # apt that keeps no caches; the slim one also drops docs, man pages, locales.
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$mirror"
    if [[ -n $security ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$security"
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  rm -rf "${rootfs:?}"/var/lib/apt/lists/* "${rootfs:?}"/var/cache/apt/*.bin \
    "${rootfs:?}"/var/cache/apt/archives/*.deb "${rootfs:?}"/var/log/*
  # /dev, /proc, /sys, /run and /tmp go in empty, as in the official images.
  excludes=('--exclude=./dev/*' '--exclude=./proc/*' '--exclude=./sys/*' '--exclude=./run/*' '--exclude=./tmp/*')
  timeout 300 tar --numeric-owner "${excludes[@]}" -C "$rootfs" -cf "$work/bookworm.tar" .
  timeout 300 podman --runtime runc import --quiet --change 'CMD ["bash"]' --change "ENV PATH=$default_path" "$work/bookworm.tar" "$base_full" >/dev/null

  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "${rootfs:?}"/usr/share/{man,groff,info,lintian,linda}/*
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  timeout 300 tar --numeric-owner "${excludes[@]}" -C "$rootfs" -cf "$work/bookworm-slim.tar" .
  timeout 300 podman --runtime runc import --quiet --change 'CMD ["bash"]' --change "ENV PATH=$default_path" "$work/bookworm-slim.tar" "$base_slim" >/dev/null
  rm -rf --one-file-system "$rootfs" "$work"/*.tar
  log "imported $base_full and $base_slim"
fi
if [[ ${1:-} == --base-images ]]; then  # scripts/demo-in-bookworm.sh needs only these
  exit 0
fi

# ----------------------------------------------------------------- 3. build
version=$(sed -n 's/^project(cwcreds VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
log "podman build -t $image (about 6 minutes when the sources changed: it compiles and runs the unit tests; seconds when cached)"
build_started=$SECONDS
# The Dockerfile sets these labels from build arguments; buildah 1.28 reuses a
# cached LABEL step even when its argument changed, so --label sets them too.
build_flags=()
for pair in "version=$version" "revision=$revision" "created=$created"; do
  build_flags+=(--build-arg "$(tr '[:lower:]' '[:upper:]' <<<"${pair%%=*}")=${pair#*=}"
    --label "org.opencontainers.image.$pair")
done
# The build stage compiles with the compiler cache the normal build filled
# (the Dockerfile uses it when mounted): minutes saved, the same objects.
if [[ -d .ccache ]]; then
  build_flags+=(-v "$PWD/.ccache:/ccache")
fi
if ! run_with_progress "$work/build.log" '^(STEP [0-9]+/[0-9]+|\[ *[0-9]+%\])' timeout 1500 podman --runtime runc build \
  --pull=never --network host "${build_flags[@]}" -t "$image" -f Dockerfile .; then
  tail -40 "$work/build.log"
  echo "container-test: podman build failed" >&2
  exit 1
fi
unit=$(grep -E "tests passed|tests failed" "$work/build.log" | tail -1 || true)
echo "    unit tests in the build stage: ${unit:-unchanged sources, cached layer}"
log "built in $((SECONDS - build_started))s"
# Each rebuild leaves the previous build stage (~650 MB) dangling: drop those
# from earlier runs, keep this run's (it is the cache of the next build).
timeout 120 podman --runtime runc image prune -f --filter until=10m >/dev/null 2>&1 || true

# --------------------------------------------------------- 3b. arm64 image
# linux/arm64 without emulated RUN steps: the cross-built binary and the
# :arm64 packages' own library files (scripts/arm64-rootfs.sh) on scratch
# (Dockerfile.assembled). Reuses build-arm64/cwcreds when the arm64 stage of
# scripts/test.sh built it; builds it otherwise. CWCREDS_ARM64=no skips the
# arm64 image, its checks and the manifest list.
arm64=yes
[[ ${CWCREDS_ARM64:-yes} == no ]] && arm64=no
image_arm64=${CWCREDS_IMAGE_ARM64:-${image}-arm64}
manifest=${CWCREDS_MANIFEST:-${image}-multiarch}
if [[ $arm64 == yes ]]; then
  arm64_started=$SECONDS
  log "arm64 image $image_arm64 from the cross-built binary"
  # The arm64 checks run the image's programs through qemu-user, which the
  # kernel starts by binfmt_misc (Debian's qemu-user-static registers with
  # the fix-binary flag: the interpreter is opened now, so it works inside
  # the container's root too).
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    update-binfmts --enable qemu-aarch64
  fi
  if ! bash scripts/arm64-rootfs.sh "$work/arm64/rootfs" >"$work/arm64-rootfs.log" 2>&1; then
    tail -30 "$work/arm64-rootfs.log"
    echo "container-test: the arm64 runtime tree failed" >&2
    exit 1
  fi
  if ! timeout 300 podman --runtime runc build --pull=never --platform linux/arm64 "${build_flags[@]}" \
    -t "$image_arm64" -f Dockerfile.assembled "$work/arm64" >"$work/build-arm64.log" 2>&1; then
    tail -30 "$work/build-arm64.log"
    echo "container-test: podman build of the arm64 image failed" >&2
    exit 1
  fi
  log "arm64 image built in $((SECONDS - arm64_started))s"
fi

# ------------------------------------------------------------------- 4. run
log "starting the emulator on 127.0.0.1"
python3 tests/support/cw_emulator.py --dir "$work/emulator" >"$work/emulator.log" 2>&1 &
emulator_pid=$!
emulator_url=""
for _ in $(seq 150); do
  emulator_url=$(sed -n 's/^emulator *\(https:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$work/emulator.log")
  [[ -n $emulator_url ]] && break
  kill -0 "$emulator_pid" 2>/dev/null || break
  sleep 0.2
done
if [[ -z $emulator_url ]]; then
  cat "$work/emulator.log"
  echo "container-test: the emulator did not start" >&2
  exit 1
fi

# The legacy-clients component's caller token, as a kubelet writes a Secret
# volume: files owned by root, with the manifest's defaultMode (no fsGroup).
# The sidecar runs as 65532, so that mode must let others read.
secret_mode=$(sed -n 's/^ *defaultMode: \(0[0-7]*\)$/\1/p' manifests/components/cwcreds-legacy-clients/sidecar.yaml)
mkdir -p "$work/caller-secret"
caller_token=$(openssl rand -hex 24)
printf '%s' "$caller_token" >"$work/caller-secret/token"
chown -R 0:0 "$work/caller-secret"
chmod "$secret_mode" "$work/caller-secret/token"

# check_image IMAGE ARCH: every check of this step on one image; the arm64
# one runs through qemu-user, which binfmt_misc starts for arm64 programs.
check_image() {
  local image=$1 arch=$2
  local name=cwcreds-ci-$$-$arch
  log "checking $image ($arch)"
  size_bytes=$(podman_ image inspect -f '{{.Size}}' "$image")
  size_mb=$(awk -v b="$size_bytes" 'BEGIN { printf "%.1f", b / 1000000 }')

  out=$(timeout 60 podman --runtime runc run --pull=never --platform "linux/$arch" --rm --network none "$image" --version 2>&1) || true
  check "cwcreds --version in the image prints 'cwcreds $version' (got: $out)" [ "$out" = "cwcreds $version" ]

  # The image holds exactly what the binary needs: itself, the shared
  # libraries its own loader resolves inside the image (so nothing ldd does
  # not name), the CA bundle and passwd/group. No shell, no package manager.
  image_root=$(podman_ image mount "$image")
  (cd "$image_root" && find . ! -type d | sed 's|^\.||' | sort) >"$work/image-files.txt"
  loader=$(grep -m1 '/ld-linux' "$work/image-files.txt" || true)
  needed=""
  if [[ -n $loader ]]; then
    needed=$(timeout 60 podman --runtime runc run --pull=never --platform "linux/$arch" --rm --network none --entrypoint "$loader" "$image" \
      --list /usr/local/bin/cwcreds 2>&1 | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }') || true
  fi
  {
    printf '%s\n' /usr/local/bin/cwcreds /etc/ssl/certs/ca-certificates.crt /etc/passwd /etc/group
    [[ -n $needed ]] && printf '%s\n' "$needed"
  } | sort -u >"$work/image-expected.txt"
  extra=$(comm -23 "$work/image-files.txt" "$work/image-expected.txt" | tr '\n' ' ')
  missing=$(comm -13 "$work/image-files.txt" "$work/image-expected.txt" | tr '\n' ' ')
  files_ok=no
  [[ -z $extra && -z $missing && -n $needed ]] && files_ok=yes
  check "the image holds only the binary, the libraries it loads, the CA bundle and passwd/group (extra: ${extra:-none}; missing: ${missing:-none})" \
    [ "$files_ok" = yes ]
  check "the system trust store (libcurl's default CA bundle) is in the image and not empty" \
    test -s "$image_root/etc/ssl/certs/ca-certificates.crt"
  check "passwd and group name 65532" grep -q ':65532:65532:' "$image_root/etc/passwd"
  image_gzip=$(tar --numeric-owner -C "$image_root" -cf - . | gzip -6 | wc -c)
  echo "    image files ($(wc -l <"$work/image-files.txt")):"
  (cd "$image_root" && xargs -a "$work/image-files.txt" -I{} stat -c '      %8s %n' ".{}")
  timeout 60 podman --runtime runc image unmount "$image" >/dev/null || true
  user=$(podman_ image inspect -f '{{.Config.User}}' "$image")
  check "image USER is 65532:65532 (got: $user)" [ "$user" = "65532:65532" ]
  entrypoint=$(podman_ image inspect -f '{{json .Config.Entrypoint}}' "$image")
  check "ENTRYPOINT is exec form, no shell (got: $entrypoint)" [ "$entrypoint" = '["/usr/local/bin/cwcreds"]' ]
  labels=$(podman_ image inspect -f '{{json .Config.Labels}}' "$image")
  check "OCI labels title/version/revision present" python3 -c '
import json, sys
labels = json.loads(sys.argv[1]) or {}
want = {"org.opencontainers.image.title": "cwcreds", "org.opencontainers.image.version": sys.argv[2],
        "org.opencontainers.image.revision": sys.argv[3]}
sys.exit(0 if all(labels.get(k) == v for k, v in want.items()) else 1)' "$labels" "$version" "$revision"

  containers+=("$name")
  log "podman run $name: cwcreds serve against $emulator_url"
  timeout 60 podman --runtime runc run --pull=never --platform "linux/$arch" -d --name "$name" --network host \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -v "$work/emulator/ca.pem:/etc/cwcreds/ca.pem:ro" \
    -v "$work/emulator/tokens:/var/run/secrets/tokens:ro" \
    -v "$work/caller-secret:/var/run/secrets/cwcreds-caller:ro" \
    -e CWCREDS_DRAIN_DELAY=2s \
    "$image" serve --endpoint "$emulator_url/v1/cwobject/temporary-credentials/oidc/cw-test-org" \
    --ca-file /etc/cwcreds/ca.pem --listen 127.0.0.1:0 --probe-listen 127.0.0.1:0 \
    --accept-token-file /var/run/secrets/cwcreds-caller/token >/dev/null

  port=""
  probe_port=""
  for _ in $(seq 100); do
    logs=$(timeout 10 podman --runtime runc logs "$name" 2>&1 || true)
    port=$(sed -n 's/.* listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$logs" | head -1)
    probe_port=$(sed -n 's/.*probes listening probe_address=127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$logs" | head -1)
    [[ -n $port && -n $probe_port ]] && break
    [[ $(podman_ inspect -f '{{.State.Running}}' "$name" 2>/dev/null) == true ]] || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    timeout 10 podman --runtime runc logs "$name" 2>&1 | tail -20
    not_ok "the sidecar in the container started listening"
  else
    ok "the sidecar in the container listens on 127.0.0.1:$port"
    token=$(cat "$work/emulator/tokens/oidc-token")
    status=$(curl -sS -m 5 -o "$work/credentials.json" -w '%{http_code}' \
      -H "Authorization: $token" "http://127.0.0.1:$port/v1/credentials" || true)
    check "GET /v1/credentials with the token answers 200 (got: $status)" [ "$status" = 200 ]
    status=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' \
      -H "Authorization: $caller_token" "http://127.0.0.1:$port/v1/credentials" || true)
    check "the legacy-clients caller token, a root-owned file of mode $secret_mode as in the manifest, is accepted (got: $status)" \
      [ "$status" = 200 ]
    check "/v1/credentials is container-credentials JSON" python3 -c '
import json, re, sys
body = json.load(open(sys.argv[1]))
ok = all(isinstance(body.get(k), str) for k in ("AccessKeyId", "SecretAccessKey", "Token", "Expiration"))
sys.exit(0 if ok and body["AccessKeyId"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["Expiration"]) else 1)
' "$work/credentials.json"
    for path in healthz readyz; do
      status=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/$path" || true)
      check "GET /$path answers 200 (got: $status)" [ "$status" = 200 ]
      status=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$probe_port/$path" || true)
      check "GET /$path on the probe listener (what the kubelet probes) answers 200 (got: $status)" [ "$status" = 200 ]
    done
    status=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $token" \
      "http://127.0.0.1:$probe_port/v1/credentials" || true)
    check "the probe listener never serves credentials (got: $status)" [ "$status" = 404 ]
    inspect_out=$(timeout 30 podman --runtime runc exec "$name" /usr/local/bin/cwcreds inspect \
      --sidecar "http://127.0.0.1:$port" 2>&1) && inspect_code=0 || inspect_code=$?
    check "cwcreds inspect run with exec in the container passes (exit $inspect_code)" [ "$inspect_code" = 0 ]
    ((inspect_code == 0)) || echo "$inspect_out" | tail -20
    pid=$(podman_ inspect -f '{{.State.Pid}}' "$name")
    ids=$(awk '/^(Uid|Gid):/ { printf "%s %s %s %s %s|", $1, $2, $3, $4, $5 } /^CapEff:/ { print $1, $2 }' "/proc/$pid/status")
    check "the process runs as uid and gid 65532 with no capabilities (got: $ids)" \
      [ "$ids" = "Uid: 65532 65532 65532 65532|Gid: 65532 65532 65532 65532|CapEff: 0000000000000000" ]
  fi

  # As the no-native-sidecar manifest runs it: SIGTERM, and it goes on serving
  # for the drain delay (no preStop command: the image has no shell or sleep).
  timeout 10 podman --runtime runc kill --signal TERM "$name" >/dev/null || true
  if [[ -n $port ]]; then
    for _ in $(seq 100); do
      timeout 10 podman --runtime runc logs "$name" 2>&1 | grep -q ' draining ' && break
      sleep 0.05
    done
    status=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: $token" \
      "http://127.0.0.1:$port/v1/credentials" || true)
    check "after SIGTERM, for CWCREDS_DRAIN_DELAY, credentials are still served (got: $status)" [ "$status" = 200 ]
  fi
  timeout 30 podman --runtime runc wait "$name" >/dev/null || timeout 60 podman --runtime runc stop -t 10 "$name" >/dev/null || true
  code=$(podman_ inspect -f '{{.State.ExitCode}}' "$name" 2>/dev/null || echo none)
  check "then it stops with exit code 0 (got: $code)" [ "$code" = 0 ]
  if ((failures)); then
    echo "--- sidecar log"
    timeout 10 podman --runtime runc logs "$name" 2>&1 | tail -30
    echo "--- emulator log"
    tail -20 "$work/emulator.log"
  fi

  echo "image ($arch): $image, $size_mb MB ($size_bytes bytes), $(awk -v b="$image_gzip" 'BEGIN { printf "%.1f", b / 1000000 }') MB gzipped"
  sizes+=("$arch: $size_mb MB ($size_bytes bytes), $(awk -v b="$image_gzip" 'BEGIN { printf "%.1f", b / 1000000 }') MB gzipped")
}
sizes=()
check_image "$image" amd64
if [[ $arm64 == yes ]]; then
  check_image "$image_arm64" arm64
  # One tag for both platforms: a manifest list of the two local images.
  log "manifest list $manifest (linux/amd64 + linux/arm64)"
  timeout 60 podman manifest rm "$manifest" >/dev/null 2>&1 || true
  timeout 60 podman --runtime runc rmi "$manifest" >/dev/null 2>&1 || true
  if timeout 60 podman manifest create "$manifest" >/dev/null \
    && timeout 120 podman manifest add "$manifest" "containers-storage:$image" >/dev/null \
    && timeout 120 podman manifest add "$manifest" "containers-storage:$image_arm64" >/dev/null; then
    platforms=$(timeout 60 podman manifest inspect "$manifest" | python3 -c '
import json, sys
print(" ".join(sorted(m["platform"]["os"] + "/" + m["platform"]["architecture"] for m in json.load(sys.stdin)["manifests"])))')
  else
    platforms="(podman manifest failed)"
  fi
  check "the manifest list $manifest names linux/amd64 and linux/arm64 (got: $platforms)" \
    [ "$platforms" = "linux/amd64 linux/arm64" ]
fi
for size in "${sizes[@]}"; do echo "image size $size"; done
log "done: $((checks - failures)) of $checks checks ok"
((failures == 0))

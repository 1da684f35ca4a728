#!/usr/bin/env bash
# Build the dislomob image where no base image can be pulled from a hub (README "Container"):
#   1. a Debian bookworm base made with debootstrap + docker import (cached: made once),
#   2. the image from ./Dockerfile with --build-arg BASE=<that base>, pip trusting the host's CA bundle
#      and taking local wheels (the CPU torch) instead of PyPI's CUDA build,
#   3. `make test-fast` inside the image.
# Prints the base build time, the image build time, the image size and the test outcome.
# Needs root (debootstrap), a running dockerd, and the Debian mirror and PyPI reachable.
#
# Settings (environment):
#   IMAGE=dislomob:latest  BASE_IMAGE=dislomob-base:bookworm  SUITE=bookworm
#   MIRROR=<first Debian URI of the host's apt sources, else http://deb.debian.org/debian>
#   CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt   (empty: no bundle; the base's own CA store)
#   WHEELS="/opt/wheels/torch-*.whl"               (glob of local wheels to offer pip; empty: none)
#   CACHE=~/.cache/dislomob-docker                 (the debootstrap tarball)
#   SKIP_TESTS=1                                   (build only)
#   DOCKER=docker  BUILD_ARGS=""                   (extra `docker build` arguments, e.g. --no-cache)
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER=${DOCKER:-docker}
IMAGE=${IMAGE:-dislomob:latest}
BASE_IMAGE=${BASE_IMAGE:-dislomob-base:bookworm}
SUITE=${SUITE:-bookworm}
CACHE=${CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dislomob-docker}
CA_BUNDLE=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
WHEELS=${WHEELS-/opt/wheels/torch-*.whl}
# What the base must carry for the Dockerfile: python3.11 with venv (and ensurepip's pip), make, git,
# CA certificates. No compiler: every pinned dependency is a wheel except antlr4-python3-runtime,
# a pure-Python sdist (checked 2026-12-07 with pip install --dry-run --report).
PACKAGES=python3,python3-venv,make,git,ca-certificates

host_mirror() {
    local uri
    uri=$(grep -hs -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
              /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n1 | tr -d ' ') || true
    echo "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(host_mirror)}

seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.0f", b - a }'; }

"$DOCKER" info >/dev/null 2>&1 || {
    echo "no docker daemon answers ($DOCKER info failed); start dockerd first" >&2; exit 1; }

# 1. Base image ------------------------------------------------------------------------------------
base_s=cached
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    t0=$(seconds)
    tarball="$CACHE/$SUITE-minbase.tar"
    if [[ ! -s $tarball ]]; then
        command -v debootstrap >/dev/null || { echo "debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
        mkdir -p "$CACHE"
        rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
        trap 'rm -rf "$rootfs"' EXIT
        echo "== debootstrap $SUITE from $MIRROR"
        debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR"
        security=${MIRROR%/debian*}/debian-security
        cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $security $SUITE-security main
EOF
        chroot "$rootfs" apt-get clean
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/tmp/*
        tar -C "$rootfs" --numeric-owner -cf "$tarball.part" .
        mv "$tarball.part" "$tarball"
        rm -rf "$rootfs"; trap - EXIT
    fi
    echo "== docker import $tarball -> $BASE_IMAGE"
    "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$tarball" "$BASE_IMAGE" >/dev/null
    base_s="$(elapsed "$t0") s"
fi

# 2. Image ------------------------------------------------------------------------------------------
# Build inputs that never reach git nor the final image (docker/*/.gitignore; the Dockerfile's build stage).
rm -f docker/wheels/*.whl docker/certs/*.crt
cleanup_inputs() { rm -f docker/wheels/*.whl docker/certs/*.crt; }
trap cleanup_inputs EXIT
if [[ -n $CA_BUNDLE ]]; then cp "$CA_BUNDLE" docker/certs/ca-bundle.crt; fi
shopt -s nullglob
for whl in $WHEELS; do cp -l "$whl" docker/wheels/ 2>/dev/null || cp "$whl" docker/wheels/; done
shopt -u nullglob
echo "== docker build -t $IMAGE --build-arg BASE=$BASE_IMAGE (wheels: $(ls docker/wheels | tr '\n' ' '))"
t0=$(seconds)
# shellcheck disable=SC2086  # BUILD_ARGS is a word list on purpose
"$DOCKER" build -t "$IMAGE" --build-arg BASE="$BASE_IMAGE" ${BUILD_ARGS:-} .
build_s=$(elapsed "$t0")
cleanup_inputs
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
echo "base image ($BASE_IMAGE): $base_s"
echo "image build ($IMAGE): $build_s s"
echo "image size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.2f GB", s / 1e9 }'))"

# 3. make test-fast inside --------------------------------------------------------------------------
[[ ${SKIP_TESTS:-0} == 1 ]] && exit 0
log=$(mktemp /tmp/dislomob-test-fast.XXXXXX.log)
t0=$(seconds)
rc=0
"$DOCKER" run --rm "$IMAGE" test-fast 2>&1 | tee "$log" || rc=$?
echo "test-fast in $IMAGE: exit $rc after $(elapsed "$t0") s: $(grep -E '(passed|failed|error)' "$log" | tail -n1) (log $log)"
exit "$rc"

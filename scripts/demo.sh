#!/usr/bin/env bash
# The main job on one machine: installs what is missing, builds, starts a local nats-server,
# Redis, the dispatcher and three workers on loopback addresses 127.0.0.2-4 (two "nodes"),
# runs a ping, a traceroute and an iperf3 between them, prints the results and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

cargo build --workspace --bins --locked --quiet
bin=$PWD/target/debug
work=$(mktemp -d -t podperf-demo-XXXXXX)
pids=()
cleanup() { # workers first (they deregister), then the dispatcher, then the servers
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nats_port=$(free_port)
redis_port=$(free_port)
export PODPERF_NATS_URL=nats://127.0.0.1:$nats_port
export PODPERF_REDIS_URL=redis://127.0.0.1:$redis_port

nats-server -js -sd "$work/jetstream" -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save "" --appendonly no \
  >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$nats_port") 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/"$redis_port") 2>/dev/null && break
  sleep 0.1
done

RUST_LOG=warn "$bin/podperf-dispatcher" >"$work/dispatcher.log" 2>&1 &
pids+=($!)
start_worker() { # pod node ip
  RUST_LOG=warn POD_NAME=$1 NODE_NAME=$2 POD_IP=$3 NODE_IP=$3 "$bin/podperf-worker" \
    >"$work/$1.log" 2>&1 &
  pids+=($!)
}
start_worker pod-a1 node-a 127.0.0.2
start_worker pod-a2 node-a 127.0.0.3
start_worker pod-b1 node-b 127.0.0.4

for _ in $(seq 100); do
  n=$("$bin/podperf" -o json workers 2>/dev/null | grep -c '"worker_id"' || true)
  [ "$n" -ge 3 ] && break
  sleep 0.1
done

podperf() { printf '\n$ podperf %s\n' "$*"; "$bin/podperf" "$@"; }
podperf workers
podperf run ping --from pod-a1 --to pod-b1 --count 5
podperf run traceroute --from pod-a1 --to pod-b1
podperf run iperf3 --from pod-a1 --to pod-b1 --duration 3
podperf jobs

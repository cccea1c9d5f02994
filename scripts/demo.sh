#!/usr/bin/env bash
# The main job on one machine: installs what is missing, builds, brings up a 2-node × 2-pod
# Flannel-VXLAN cluster replica made of network namespaces (testbed/), runs `podperf matrix` in it —
# pod ↔ pod on one node, pod ↔ pod across nodes, node ↔ node — prints the table and tears it all
# down. Where namespaces cannot be made (not root), it falls back to workers on loopback addresses
# and says so. Extra arguments go to `podperf matrix` (e.g. --samples 5 --udp).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

cargo build --workspace --bins --locked --quiet
bin=$PWD/target/debug

status=0
testbed/testbed.sh check >/dev/null 2>&1 || status=$?
if [ "$status" -eq 0 ]; then
  exec testbed/testbed.sh run --bin-dir "$bin" -- bash -c \
    'set -e; echo "\$ podperf workers"; podperf workers; echo; echo "\$ podperf matrix $*"; podperf matrix "$@"' \
    podperf "$@"
fi
[ "$status" -eq 3 ] || { testbed/testbed.sh check; exit 1; }
echo "network namespaces are not available here (root is needed): falling back to workers on" \
  "loopback addresses — the three paths then share one network stack" >&2

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
start_worker() { # pod node ip node-ip host-network iperf3-port
  RUST_LOG=warn POD_NAME=$1 NODE_NAME=$2 POD_IP=$3 NODE_IP=$4 PODPERF_HOST_NETWORK=$5 \
    PODPERF_IPERF3_PORT=$6 "$bin/podperf-worker" >"$work/$1.log" 2>&1 &
  pids+=($!)
}
start_worker pod-0-0 node-0 127.0.0.2 127.0.0.10 false 5201
start_worker pod-0-1 node-0 127.0.0.3 127.0.0.10 false 5201
start_worker pod-1-0 node-1 127.0.0.4 127.0.0.11 false 5201
start_worker host-0 node-0 127.0.0.10 127.0.0.10 true 5202
start_worker host-1 node-1 127.0.0.11 127.0.0.11 true 5202

for _ in $(seq 100); do
  n=$("$bin/podperf" -o json workers 2>/dev/null | grep -c '"worker_id"' || true)
  [ "$n" -ge 5 ] && break
  sleep 0.1
done

# podperf-web on loopback (no token: it listens on loopback only and says so).
web_port=$(free_port)
PODPERF_WEB_LISTEN=127.0.0.1:$web_port RUST_LOG=warn "$bin/podperf-web" >"$work/web.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$web_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "podperf-web: http://127.0.0.1:$web_port/ (API: /api/v2/, /api/v1/external/; spec: /api/v2/openapi.json)"

podperf() { printf '\n$ podperf %s\n' "$*"; "$bin/podperf" "$@"; }
podperf workers
podperf run ping --from pod-0-0 --to pod-1-0 --count 5
podperf run traceroute --from pod-0-0 --to pod-1-0
podperf run iperf3 --from pod-0-0 --to pod-1-0 --duration 3
podperf matrix "$@"
printf '\n$ curl -s -X POST "http://127.0.0.1:%s/api/v2/jobs?wait=30s" -d %s\n' "$web_port" \
  "'{\"source\":\"pod-0-0\",\"target\":{\"worker\":\"pod-1-0\"},\"params\":{\"kind\":\"ping\",\"count\":3}}'"
curl -s -X POST "http://127.0.0.1:$web_port/api/v2/jobs?wait=30s" \
  -d '{"source":"pod-0-0","target":{"worker":"pod-1-0"},"params":{"kind":"ping","count":3}}'
echo

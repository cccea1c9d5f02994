#!/usr/bin/env bash
# Measures the testbed's three path classes with the podperf CLI and prints a markdown table:
# pod ↔ pod on one node (pod-0-0 → pod-0-1), pod ↔ pod across nodes (pod-0-0 → pod-1-0, through
# flannel.1) and node ↔ node (host-0 → host-1, host-network workers on the underlay).
# Runs where `podperf` reaches the dispatcher, i.e. inside the testbed:
#
#   testbed/testbed.sh run -- testbed/measure.sh [--samples N] [--duration S] [--count N]
#
# Needs python3 (to read podperf's JSON). Each figure is the median of N samples (min–max shown).
set -euo pipefail

samples=3 duration=5 count=20
while [ $# -gt 0 ]; do
  case $1 in
    --samples) samples=${2:?}; shift 2 ;;
    --duration) duration=${2:?}; shift 2 ;;
    --count) count=${2:?}; shift 2 ;;
    *) echo "measure.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

job() { # podperf run ARGS... -> the job's JSON on stdout (fails unless it succeeded)
  podperf -o json run "$@"
}

summarise() { # label kind file...  -> "median (min–max)"
  python3 - "$@" <<'EOF'
import json, statistics, sys
kind, files = sys.argv[1], sys.argv[2:]
vals = []
for f in files:
    j = json.load(open(f))
    assert j["state"] == "succeeded", (f, j["state"])
    r = j["result"]
    if kind == "rtt":
        assert r["loss_percent"] == 0.0, r
        vals.append(r["rtt_avg_ms"])
    elif kind == "bw":
        vals.append(r["receiver_bits_per_second"] / 1e9)
    elif kind == "hops":
        assert r["reached"], r
        vals.append(len(r["hops"]))
m = statistics.median(vals)
if kind == "hops":
    print(f"{m:g}" if min(vals) == max(vals) else f"{m:g} ({min(vals)}–{max(vals)})")
elif kind == "rtt":
    print(f"{m:.3f} ({min(vals):.3f}–{max(vals):.3f})")
else:
    print(f"{m:.1f} ({min(vals):.1f}–{max(vals):.1f})")
EOF
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '| path | from → to | avg RTT ms, median (min–max) | TCP Gbit/s, median (min–max) | traceroute hops |\n'
printf '|---|---|---|---|---|\n'
for row in "pod ↔ pod, same node|pod-0-0|pod-0-1" "pod ↔ pod, across nodes|pod-0-0|pod-1-0" \
  "node ↔ node (host network)|host-0|host-1"; do
  IFS='|' read -r label from to <<<"$row"
  for ((i = 0; i < samples; i++)); do
    job ping --from "$from" --to "$to" --count "$count" --interval 0.2 >"$tmp/ping$i.json"
    job iperf3 --from "$from" --to "$to" --duration "$duration" >"$tmp/bw$i.json"
    job traceroute --from "$from" --to "$to" >"$tmp/tr$i.json"
  done
  printf '| %s | %s → %s | %s | %s | %s |\n' "$label" "$from" "$to" \
    "$(summarise rtt "$tmp"/ping*.json)" "$(summarise bw "$tmp"/bw*.json)" "$(summarise hops "$tmp"/tr*.json)"
  rm -f "$tmp"/*.json
done

#!/usr/bin/env bash
# A full-mesh latency round as sweeps (one fping job per worker) against the same mesh as single
# ping jobs (one job per ordered worker pair), on the testbed. Runs inside it:
#
#   testbed/testbed.sh run --nodes 8 --pods 1 -- testbed/sweep_vs_ping.sh
#
# Needs jq. Prints each sweep round's wall time (the CLI's, connect included), then the ping
# mesh's: submitted one `podperf run ping --no-wait` per pair (16 in parallel), and the time from
# the first job's creation to the last one's end (the dispatcher's records).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ids=$(podperf -o json workers | jq -r '.workers[].pod_name')
n=$(echo "$ids" | wc -l)
echo "workers: $n"
for i in 1 2 3; do
  t0=$(date +%s%N)
  podperf -o json sweep --count 5 --interval-ms 200 > $tmp/grid.json
  t1=$(date +%s%N)
  echo "sweep round $i: $(( (t1 - t0) / 1000000 )) ms, cells $(jq '.cells|length' $tmp/grid.json), failed $(jq '.failed|length' $tmp/grid.json)"
done
pairs=()
for s in $ids; do for t in $ids; do [ "$s" != "$t" ] && pairs+=("$s $t"); done; done
echo "pairs: ${#pairs[@]}"
t0=$(date +%s%N)
printf '%s\n' "${pairs[@]}" | xargs -P 16 -L 1 sh -c 'podperf -o json run ping --from "$0" --to "$1" --count 5 --no-wait' | jq -r '.job_ids[0]' > $tmp/ids
t1=$(date +%s%N)
echo "submitted $(wc -l < $tmp/ids) ping jobs in $(( (t1 - t0) / 1000000 )) ms"
for id in $(cat $tmp/ids); do
  while :; do
    st=$(podperf -o json job "$id" | jq -r '.state')
    case $st in queued|dispatched|running) sleep 0.2 ;; *) break ;; esac
  done
done
t2=$(date +%s%N)
echo "all ping jobs terminal $(( (t2 - t0) / 1000000 )) ms after the first submit"
for id in $(cat $tmp/ids); do podperf -o json job "$id"; done | jq -s '[min_by(.created_at_ms).created_at_ms, max_by(.finished_at_ms).finished_at_ms, (map(select(.state=="succeeded"))|length)] | "first created → last finished: \(.[1]-.[0]) ms, succeeded \(.[2])"'

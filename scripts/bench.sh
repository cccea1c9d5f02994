#!/usr/bin/env bash
# The benchmark command: installs what is missing, builds the release binaries, runs the harness
# (`podperf-bench`, bench/) and writes the figures to $CARGO_TARGET_DIR/bench-results/ (default
# target/bench-results/: figures.md + one JSON per figure). Benchmarks report numbers; they never
# fail because a target is missed.
#
#   scripts/bench.sh                 # every figure (≈ 5 min on 2 cores)
#   scripts/bench.sh latency         # one: latency | throughput | scale | footprint | fidelity | matrix | sweep-scale
#   scripts/bench.sh sweep-scale     # not part of `all`: 1,000 simulated nodes, 5 rounds 60 s apart (≈ 7 min)
#   scripts/bench.sh latency --jobs 2000
#
# The fidelity figure uses the netns testbed (testbed/testbed.sh) and needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -p podperf-bench -p podperf-dispatcher -p podperf-worker -p podperf-cli -p podperf-web
out=${PODPERF_BENCH_OUT:-$CARGO_TARGET_DIR/bench-results}
mkdir -p "$out"
rm -f "$out/figures.md"
{
  echo "# podperf benchmark figures ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
  echo
  echo "- $(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(free -m | awk '/^Mem:/{print $2}') MiB"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} >"$out/figures.md"
"$CARGO_TARGET_DIR/release/podperf-bench" --out "$out" "${@:-all}"
echo "figures written to $out/figures.md" >&2

#!/usr/bin/env bash
# The README's screenshots of the web UI, taken from the netns testbed (testbed/: a 2-node × 2-pod
# Flannel-VXLAN replica with host-network workers): builds the binaries and the browser test,
# brings the testbed up, runs `screenshots_from_the_testbed` (web/tests/browser.rs) inside its
# infra namespace against the testbed's podperf-web (127.0.0.1:8080 there), which saves every
# page as docs/screenshots/NAME.png (and target/screenshots/), and tears the testbed down.
# Needs root (network namespaces), chromium and chromium-driver (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins --locked --quiet
test_bin=$(cargo test -p podperf-web --test browser --no-run --locked --message-format=json 2>/dev/null |
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "browser" and .executable != null) | .executable' |
  tail -n 1)
[ -x "$test_bin" ] || { echo "screenshots.sh: the browser test was not built" >&2; exit 1; }
testbed/testbed.sh check

exec testbed/testbed.sh run --nodes 2 --pods 2 --bin-dir "$PWD/target/debug" -- \
  env PODPERF_WEB_URL=http://127.0.0.1:8080 PODPERF_SCREENSHOTS=docs \
  "$test_bin" --ignored --exact screenshots_from_the_testbed --nocapture --test-threads 1

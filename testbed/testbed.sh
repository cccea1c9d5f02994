#!/usr/bin/env bash
# podperf testbed: a Flannel-VXLAN Kubernetes cluster replica made of network namespaces on one
# Linux machine, with nats-server, Redis, the dispatcher and one podperf worker per pod and per
# node (host network) running inside it. See testbed/README.md.
#
#   testbed.sh up   [--nodes N] [--pods M] [--run-id ID] [--bin-dir DIR] [--timeout S] [--no-wait]
#                   [--pod-mtu BYTES]   (pod interfaces' MTU, default 1450; 1500 = the classic
#                                        misconfiguration over the 1500 underlay: VXLAN carries 1450)
#                   [--image TAG]   (workers and dispatcher as containers of TAG, flags from k8s/base/)
#                   [--worker-cpus LIST]   (every worker and its tools on these CPUs, taskset syntax:
#                                           0 or 0-1 or 0,2; see README "CPU placement")
#                   [--dual-stack]  (IPv6 too: pods fd10:244:N::/64 per node, nodes fd00:18::/64 on
#                                    the underlay, flannel.1 carrying both; workers get POD_IPS/HOST_IPS)
#   testbed.sh exec [--run-id ID] [--in infra|underlay|node-N|pod-N-M|host-N] -- CMD...
#   testbed.sh run  [up options] [--keep-logs] -- CMD...   (up, wait, CMD in infra, down; CMD's status)
#   testbed.sh down [--run-id ID | --all] [--keep-logs]
#   testbed.sh status [--run-id ID]
#   testbed.sh check                      (exit 0 usable, 3 no namespaces here (not root), 1 missing tools)
#
# Every namespace is named ppt-<run id>-…; every link lives inside those namespaces (veth pairs are
# created directly in them), so nothing of a run is visible in the host's `ip link`, and deleting
# the namespaces removes every link. Needs root.
set -euo pipefail

PREFIX=ppt
STATE_ROOT=${PODPERF_TESTBED_STATE:-/tmp/podperf-testbed}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)

UNDERLAY_NET=198.18.0 # RFC 2544 benchmarking range; one /24 per run, isolated in its namespaces
UNDERLAY_CIDR=$UNDERLAY_NET.0/24
INFRA_IP=$UNDERLAY_NET.2
CLUSTER_CIDR=10.244.0.0/16
NATS_PORT=4222
REDIS_PORT=6379
WEB_PORT=8080 # podperf-web, on the infra namespace's loopback (no token: loopback only)
POD_MTU=1450
WORKER_CPUS="" # up --worker-cpus: every worker (and the tools it runs) pinned there; "" = unpinned
VXLAN_MTU_MAX=1450 # the underlay's 1500 minus VXLAN's 50: the kernel refuses a larger flannel.1
VXLAN_VNI=1
VXLAN_PORT=8472
POD_IPERF3_PORT=5201
HOST_IPERF3_PORT=5202
MAX_NODES=64
MAX_PODS=64
RUST_LOG_DEFAULT=${PODPERF_TESTBED_RUST_LOG:-info,async_nats=warn}

log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((t / 1000))
}

usage() {
  sed -n '2,20p' "$SELF" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

# --- naming and addressing -----------------------------------------------------------------------

valid_run_id() { [[ $1 =~ ^[a-z0-9]{1,8}$ ]]; }
new_run_id() { od -An -N3 -tx1 /dev/urandom | tr -d ' \n'; }
ns_underlay() { echo "$PREFIX-$1-ul"; }
ns_infra() { echo "$PREFIX-$1-infra"; }
ns_node() { echo "$PREFIX-$1-n$2"; }
ns_pod() { echo "$PREFIX-$1-n$2-p$3"; }
node_ip() { echo "$UNDERLAY_NET.$((10 + $1))"; }
pod_ip() { echo "10.244.$1.$((2 + $2))"; }
pod_subnet() { echo "10.244.$1.0/24"; }
flannel_mac() { printf '0e:70:70:74:00:%02x' "$1"; }
# --dual-stack: the IPv6 twins (ULA prefixes; node N's pods in fd10:244:N::/64, its flannel.1 at
# fd10:244:N::ffff — not fd10:244:N::, the subnet-router anycast address of cni0's /64).
UNDERLAY6_NET=fd00:18
node_ip6() { echo "$UNDERLAY6_NET::$((10 + $1))"; }
pod_ip6() { echo "fd10:244:$1::$((2 + $2))"; }
vtep_ip6() { echo "fd10:244:$1::ffff"; }
# A worker's address list: the IPv4 one, and the IPv6 one with --dual-stack.
ips() { # v4 v6
  if [ "${DUAL_STACK:-0}" -eq 1 ]; then echo "$1,$2"; else echo "$1"; fi
}
new_uid() { cat /proc/sys/kernel/random/uuid; }

# Namespaces of a run that exist now (ip netns list prints "name (id: N)").
run_namespaces() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-$1-(ul|infra|n[0-9]+(-p[0-9]+)?)\$" || true
}

# Every run id with a namespace or a state dir.
all_runs() {
  {
    ip netns list 2>/dev/null | awk '{print $1}' |
      sed -nE "s/^$PREFIX-([a-z0-9]{1,8})-(ul|infra|n[0-9]+(-p[0-9]+)?)\$/\\1/p"
    if [ -d "$STATE_ROOT" ]; then
      find "$STATE_ROOT" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | grep -E '^[a-z0-9]{1,8}$' || true
    fi
  } | sort -u
}

# The run to act on: --run-id, else the only one there is.
pick_run() {
  if [ -n "${1:-}" ]; then
    valid_run_id "$1" || die "bad run id '$1' (1-8 of [a-z0-9])"
    echo "$1"
    return
  fi
  local runs
  mapfile -t runs < <(all_runs)
  case ${#runs[@]} in
    0) die "no testbed run found (start one with: testbed.sh up)" ;;
    1) echo "${runs[0]}" ;;
    *) die "several runs exist (${runs[*]}); pass --run-id" ;;
  esac
}

load_state() {
  STATE_DIR=$STATE_ROOT/$1
  [ -f "$STATE_DIR/state.env" ] || die "run $1 has no state ($STATE_DIR/state.env)"
  # shellcheck disable=SC1091
  source "$STATE_DIR/state.env"
}

alive() { # pid: running and not a zombie (no fork: it runs in wait loops)
  local k v
  while read -r k v; do
    if [ "$k" = State: ]; then
      [[ $v != Z* ]]
      return
    fi
  done 2>/dev/null <"/proc/$1/status"
  return 1
}

# --- prerequisites -------------------------------------------------------------------------------

need_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (it creates network namespaces)"
}

resolve_bin() { # tool -> absolute path (pyenv shims resolved, so processes start fast)
  local p
  p=$(command -v "$1") || return 1
  if [[ $p == */shims/* ]] && command -v pyenv >/dev/null; then
    p=$(pyenv which "$1" 2>/dev/null) || p=$(command -v "$1")
  fi
  echo "$p"
}

cmd_check() {
  if [ "$(id -u)" -ne 0 ]; then
    log "not root: network namespaces cannot be created here"
    exit 3
  fi
  if ! unshare --net true 2>/dev/null || ! ip netns list >/dev/null 2>&1; then
    log "network namespaces are not usable here (unshare --net / ip netns failed)"
    exit 3
  fi
  local missing=() t
  for t in ip bridge nats-server redis-server iperf3 ping traceroute; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "missing: ${missing[*]} (scripts/install-deps.sh installs them)"
    exit 1
  fi
  log "ok: root, network namespaces usable, tools present"
}

check_image() { # tag: what up --image needs
  command -v podman >/dev/null || die "--image needs podman (scripts/install-deps.sh installs it)"
  command -v yq >/dev/null || die "--image needs yq, to read k8s/base/ (scripts/install-deps.sh installs it)"
  podman_cmd info >/dev/null 2>&1 || die "podman cannot run here: $(podman_cmd info 2>&1 | tail -n 1)"
  podman_cmd image exists "$1" || die "no image $1 (scripts/build-image.sh $1 builds it)"
}

ensure_bins() { # bin_dir explicit?
  local dir=$1 explicit=$2 b absent=0
  for b in podperf podperf-worker podperf-dispatcher; do [ -x "$dir/$b" ] || absent=1; done
  if [ $absent -eq 1 ]; then
    [ "$explicit" = 1 ] && die "$dir lacks podperf, podperf-worker or podperf-dispatcher"
    log "building the binaries (cargo build --workspace --bins)"
    (cd "$REPO" && cargo build --workspace --bins --quiet) || die "cargo build failed"
  fi
}

# --- the network -----------------------------------------------------------------------------------

ns_sysctl() { # ns key=value...
  local ns=$1
  shift
  if command -v nsenter >/dev/null; then # cheaper than ip netns exec (no mount namespace)
    nsenter --net="/run/netns/$ns" sysctl -qw "$@" >/dev/null
  else
    ip netns exec "$ns" sysctl -qw "$@" >/dev/null
  fi
}

# Builds the whole network with few processes: one `ip -batch` creates every namespace and every
# veth pair (each end created directly inside its namespace), then one batch per namespace
# configures it. `ip -batch` stops at the first error.
build_network() { # run nodes pods
  local run=$1 nodes=$2 pods=$3 ul infra n m p node pod create cfg fdb macs=()
  for ((n = 0; n < nodes; n++)); do printf -v "macs[n]" '0e:70:70:74:00:%02x' "$n"; done
  ul=$PREFIX-$run-ul
  infra=$PREFIX-$run-infra

  create="netns add $ul
netns add $infra
link add name eth0 netns $infra type veth peer name infra netns $ul"
  echo "$ul" >>"$STATE_DIR/namespaces"
  echo "$infra" >>"$STATE_DIR/namespaces"
  for ((n = 0; n < nodes; n++)); do
    node=$PREFIX-$run-n$n
    echo "$node" >>"$STATE_DIR/namespaces"
    create+="
netns add $node
link add name eth0 netns $node type veth peer name n$n netns $ul"
    for ((p = 0; p < pods; p++)); do
      pod=$PREFIX-$run-n$n-p$p
      echo "$pod" >>"$STATE_DIR/namespaces"
      create+="
netns add $pod
link add name eth0 netns $pod mtu $POD_MTU type veth peer name veth$p netns $node mtu $POD_MTU"
    done
  done
  ip -batch - <<<"$create"

  # The underlay switch: a bridge alone in its namespace, one port per node plus infra.
  cfg="link set lo up
link add ul0 type bridge
link set ul0 up
link set infra master ul0 up"
  for ((n = 0; n < nodes; n++)); do cfg+=$'\n'"link set n$n master ul0 up"; done
  ip -n "$ul" -batch - <<<"$cfg"

  # The infra "machine" on the underlay (NATS, Redis, dispatcher), with return routes to pods.
  cfg="link set lo up
addr add $INFRA_IP/24 dev eth0
link set eth0 up"
  for ((n = 0; n < nodes; n++)); do
    cfg+=$'\n'"route add 10.244.$n.0/24 via $UNDERLAY_NET.$((10 + n)) dev eth0"
  done
  ip -n "$infra" -batch - <<<"$cfg"

  for ((n = 0; n < nodes; n++)); do
    # A node: eth0 on the underlay, cni0 with the pod gateway, flannel.1 (VXLAN) with static
    # fdb/neigh entries and onlink routes toward every other node's pod subnet, as flanneld does.
    node=$PREFIX-$run-n$n
    ns_sysctl "$node" net.ipv4.ip_forward=1 net.ipv4.icmp_ratelimit=0
    cfg="link set lo up
addr add $UNDERLAY_NET.$((10 + n))/24 dev eth0
link set eth0 up
link add cni0 mtu $POD_MTU type bridge
addr add 10.244.$n.1/24 dev cni0
link set cni0 up
link add flannel.1 type vxlan id $VXLAN_VNI local $UNDERLAY_NET.$((10 + n)) dev eth0 dstport $VXLAN_PORT nolearning
link set flannel.1 address ${macs[n]} mtu $((POD_MTU < VXLAN_MTU_MAX ? POD_MTU : VXLAN_MTU_MAX))
addr add 10.244.$n.0/32 dev flannel.1
link set flannel.1 up"
    fdb=""
    for ((m = 0; m < nodes; m++)); do
      [ "$m" -eq "$n" ] && continue
      cfg+="
neigh replace 10.244.$m.0 lladdr ${macs[m]} dev flannel.1 nud permanent
route add 10.244.$m.0/24 via 10.244.$m.0 dev flannel.1 onlink"
      fdb+="fdb append ${macs[m]} dev flannel.1 dst $UNDERLAY_NET.$((10 + m)) self permanent"$'\n'
    done
    for ((p = 0; p < pods; p++)); do cfg+=$'\n'"link set veth$p master cni0 up"; done
    if [ "${DUAL_STACK:-0}" -eq 1 ]; then
      no_dad "$node" eth0 $(for ((p = 0; p < pods; p++)); do echo "veth$p"; done)
      ns_sysctl "$node" net.ipv6.conf.all.forwarding=1
      cfg+=$'\n'"$(node_v6_config "$n" "$nodes" macs)"
    fi
    ip -n "$node" -batch - <<<"$cfg"
    if [ -n "$fdb" ]; then bridge -n "$node" -batch - <<<"$fdb"; fi

    for ((p = 0; p < pods; p++)); do
      # A pod: eth0 (MTU 1450) on cni0, default route via the node's cni0 address.
      pod=$PREFIX-$run-n$n-p$p
      ns_sysctl "$pod" net.ipv4.icmp_ratelimit=0
      [ "${DUAL_STACK:-0}" -eq 0 ] || no_dad "$pod" eth0
      ip -n "$pod" -batch - <<EOF
link set lo up
addr add 10.244.$n.$((2 + p))/24 dev eth0
link set eth0 up
route add default via 10.244.$n.1 dev eth0
EOF
      if [ "${DUAL_STACK:-0}" -eq 1 ]; then
        ip -n "$pod" -batch - <<EOF
addr add $(pod_ip6 "$n" "$p")/64 dev eth0 nodad
route add default via fd10:244:$n::1 dev eth0
EOF
      fi
    done
  done
}

# No duplicate address detection in NS (--dual-stack), for its links DEV… and those made later:
# while a link-local address is tentative the first packets wait ~1 s for neighbour discovery.
no_dad() { # ns dev...
  local ns=$1 d keys=(net.ipv6.conf.default.accept_dad=0)
  shift
  for d in "$@"; do keys+=("net.ipv6.conf.$d.accept_dad=0"); done
  ns_sysctl "$ns" "${keys[@]}"
}

# A node's IPv6 (--dual-stack), as `ip -batch` lines: its underlay address, cni0's gateway, and
# flannel.1 carrying IPv6 like IPv4 (the same VXLAN device and fdb entries: VXLAN carries any
# inner frame over the IPv4 underlay) — an address, a permanent neighbour and an onlink route per
# other node. `nodad`: no duplicate address detection delay before the workers bind.
node_v6_config() { # n nodes macs-array-name
  local n=$1 nodes=$2 m
  local -n mac_of=$3
  echo "addr add $(node_ip6 "$n")/64 dev eth0 nodad"
  echo "addr add fd10:244:$n::1/64 dev cni0 nodad"
  echo "addr add $(vtep_ip6 "$n")/128 dev flannel.1 nodad"
  for ((m = 0; m < nodes; m++)); do
    [ "$m" -eq "$n" ] && continue
    echo "neigh replace $(vtep_ip6 "$m") lladdr ${mac_of[m]} dev flannel.1 nud permanent"
    echo "route add fd10:244:$m::/64 via $(vtep_ip6 "$m") dev flannel.1 onlink"
  done
}

# --- processes ------------------------------------------------------------------------------------

# Runs in the supervisor: starts a process inside a namespace with a clean, DaemonSet-like env.
spawn() { # name ns VAR=value... -- cmd args...
  local name=$1 ns=$2
  shift 2
  local envs=()
  while [ "$1" != "--" ]; do
    envs+=("$1")
    shift
  done
  shift
  [ "${STOP:-0}" -eq 0 ] || return 0 # teardown has begun: start nothing more
  ip netns exec "$ns" env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 RUST_LOG="$RUST_LOG_DEFAULT" \
    "${envs[@]}" "$@" </dev/null >"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$STATE_DIR/pids/$name"
}

tcp_ready() { # ns ip port
  ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null
}

wait_for() { # what timeout_s pid command...   (fails if pid dies or time runs out)
  local what=$1 timeout=$2 pid=$3 deadline
  shift 3
  deadline=$(($(now_ms) + timeout * 1000))
  until "$@"; do
    [ "${STOP:-0}" -eq 0 ] || return 1
    if ! alive "$pid"; then
      echo "$what: the process exited" >"$STATE_DIR/failed"
      return 1
    fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      echo "$what: not ready after ${timeout}s" >"$STATE_DIR/failed"
      return 1
    fi
    sleep 0.05
  done
}

api_ready() { as_cli "$INFRA_NS" "$BIN_DIR/podperf" workers >/dev/null 2>&1; }

# Runs a command in a namespace as podperf's `cli` NATS user.
as_cli() { # ns cmd...
  local ns=$1
  shift
  ip netns exec "$ns" env PODPERF_NATS_URL="$NATS_URL" PODPERF_NATS_USER=cli \
    PODPERF_NATS_PASSWORD="$PODPERF_CLI_PASSWORD" "$@"
}

# --- containers of the image (up --image TAG) -------------------------------------------------------
# Each worker (and the dispatcher) runs as a container of the image inside its namespace, with the
# user, capabilities, read-only root file system, emptyDir mounts, memory limit, seccomp, command
# and environment read from its manifest in k8s/base/ (so the testbed and the DaemonSets cannot
# drift). Only the values the cluster would give differ: the Downward API fields and the secrets
# take the testbed's values, and a few plain values are the testbed's (TESTBED_OVERRIDES below).

K8S_BASE=$REPO/k8s/base
WORKER_POD_MANIFEST=$K8S_BASE/workers/worker-a.yaml
WORKER_HOST_MANIFEST=$K8S_BASE/workers/worker-host.yaml
DISPATCHER_MANIFEST=$K8S_BASE/dispatcher/deployment.yaml
WEB_MANIFEST=$K8S_BASE/web/deployment.yaml
# Container-runtime semantics of a Kubernetes node (containerd, runc): a non-root container has its
# added capabilities in the bounding set but no inheritable or ambient ones, so a non-root process
# gets NET_RAW only from a file capability (ping's, traceroute's). podman would also make them
# ambient for a non-root --user; this entrypoint takes that back before the manifest's command.
K8S_CAPS_ENTRYPOINT='["setpriv","--inh-caps=-all","--ambient-caps=-all","--"]'

podman_cmd() {
  if command -v runc >/dev/null; then podman --runtime runc "$@"; else podman "$@"; fi
}

# The manifest's container, one setting per line: KEY and VALUEs separated by US (ASCII 0x1f, so
# empty fields survive `read`). Container settings win over the pod's, as in Kubernetes.
container_spec() { # manifest container-name
  yq -r --arg c "$2" '
    .spec.template.spec as $p
    | ($p.containers[] | select(.name == $c)) as $k
    | ($p.securityContext // {}) as $ps | ($k.securityContext // {}) as $cs
    | "user\u001f\($cs.runAsUser // $ps.runAsUser // "")\u001f\($cs.runAsGroup // $ps.runAsGroup // "")",
      "nonroot\u001f\($cs.runAsNonRoot // $ps.runAsNonRoot // false)",
      "seccomp\u001f\(($cs.seccompProfile // $ps.seccompProfile // {}).type // "Unconfined")",
      "readonly\u001f\($cs.readOnlyRootFilesystem // false)",
      "privesc\u001f\(if $cs.allowPrivilegeEscalation == false then "false" else "true" end)",
      (($cs.capabilities.drop // [])[] | "capdrop\u001f\(.)"),
      (($cs.capabilities.add // [])[] | "capadd\u001f\(.)"),
      "hostnet\u001f\($p.hostNetwork // false)",
      "memory\u001f\($k.resources.limits.memory // "")",
      (($k.command // [])[] | "command\u001f\(.)"),
      (($k.args // [])[] | "command\u001f\(.)"),
      (($p.volumes // []) as $v | ($k.volumeMounts // [])[] | . as $m
        | if any($v[]; .name == $m.name and has("emptyDir")) then "tmpfs\u001f\($m.mountPath)"
          else "volume\u001f\($m.mountPath)" end),
      (($k.env // [])[]
        | if has("value") then "env\u001f\(.name)\u001fvalue\u001f\(.value)"
          elif .valueFrom.fieldRef then "env\u001f\(.name)\u001ffield\u001f\(.valueFrom.fieldRef.fieldPath)"
          elif .valueFrom.secretKeyRef then "env\u001f\(.name)\u001fsecret\u001f\(.valueFrom.secretKeyRef.key)"
          else "env\u001f\(.name)\u001funsupported\u001f" end)
  ' "$1"
}

# Plain values the testbed sets instead of the manifest's (cluster DNS names do not resolve here; a
# short grace keeps `down` quick; one NATS server, not three).
declare -A TESTBED_OVERRIDES=(
  [PODPERF_SHUTDOWN_GRACE_S]=2
  [PODPERF_REPLICAS]=1
)
# Set by the supervisor before each container: Downward API fieldPath → value, secret key → value,
# and that container's own plain values (NATS and Redis addresses, RUST_LOG).
declare -A FIELDS=() SECRETS=() OVERRIDES=()

# Prints the podman arguments (one a line) for NAME from the manifest and writes its env file.
# FIELDS and SECRETS are associative arrays the caller fills (fieldPath → value, key → value);
# OVERRIDES adds per-container plain values.
container_args() { # name ns manifest container want-hostnet env-file
  local name=$1 ns=$2 manifest=$3 cname=$4 want_hostnet=$5 envf=$6 key a b c uid="" gid="" cmd=()
  local nonroot=false readonly=false seen=0
  : >"$envf"
  chmod 600 "$envf"
  printf '%s\n' --rm --name "$PREFIX-$RUN_ID-$name" --label "podperf.testbed.run=$RUN_ID" \
    --network "ns:/run/netns/$ns" --env-file "$envf" --entrypoint "$K8S_CAPS_ENTRYPOINT" \
    --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096
  while IFS=$'\x1f' read -r key a b c; do
    seen=1
    case $key in
      user) uid=$a gid=$b ;;
      nonroot) nonroot=$a ;;
      seccomp)
        case $a in
          RuntimeDefault) ;; # podman's default profile
          Unconfined) printf '%s\n' --security-opt seccomp=unconfined ;;
          *) die "$manifest: seccompProfile $a is not supported by the testbed" ;;
        esac
        ;;
      readonly) readonly=$a ;;
      privesc) [ "$a" = true ] || printf '%s\n' --security-opt no-new-privileges ;;
      capdrop) printf '%s\n' --cap-drop "$a" ;;
      capadd) printf '%s\n' --cap-add "$a" ;;
      hostnet) [ "$a" = "$want_hostnet" ] || die "$manifest: hostNetwork is $a, the testbed runs it with $want_hostnet" ;;
      memory) [ -z "$a" ] || printf '%s\n' --memory "$(k8s_memory "$a")" ;;
      command) cmd+=("$a") ;;
      tmpfs) printf '%s\n' --tmpfs "$a" ;;
      volume) die "$manifest: only emptyDir volumes are supported by the testbed ($a)" ;;
      env)
        case $b in
          value)
            if [ -n "${OVERRIDES[$a]+x}" ]; then
              c=${OVERRIDES[$a]}
            elif [ -n "${TESTBED_OVERRIDES[$a]+x}" ]; then
              c=${TESTBED_OVERRIDES[$a]}
            fi
            ;;
          field) [ -n "${FIELDS[$c]+x}" ] || die "$manifest: no testbed value for fieldPath $c ($a)"; c=${FIELDS[$c]} ;;
          secret) [ -n "${SECRETS[$c]+x}" ] || die "$manifest: no testbed secret $c ($a)"; c=${SECRETS[$c]} ;;
          *) die "$manifest: env $a: only value, fieldRef and secretKeyRef are supported" ;;
        esac
        printf '%s=%s\n' "$a" "$c" >>"$envf"
        ;;
    esac
  done < <(container_spec "$manifest" "$cname")
  [ "$seen" -eq 1 ] || die "$manifest: no container named $cname"
  if [ "$nonroot" = true ] && { [ -z "$uid" ] || [ "$uid" -eq 0 ]; }; then
    die "$manifest: runAsNonRoot needs a non-zero runAsUser"
  fi
  [ -z "$uid" ] || printf '%s\n' --user "$uid${gid:+:$gid}"
  case $name in pod-* | host-*) [ -z "${WORKER_CPUS:-}" ] || printf '%s\n' --cpuset-cpus "$WORKER_CPUS" ;; esac
  [ "$readonly" = true ] && printf '%s\n' --read-only --read-only-tmpfs=false
  [ ${#cmd[@]} -gt 0 ] || die "$manifest: container $cname has no command"
  printf '%s\n' "$IMAGE" "${cmd[@]}"
}

k8s_memory() { # 256Mi → 256m (podman's units are binary too)
  case $1 in
    *Ki) echo "${1%Ki}k" ;;
    *Mi) echo "${1%Mi}m" ;;
    *Gi) echo "${1%Gi}g" ;;
    *[0-9]) echo "${1}b" ;;
    *) die "memory limit $1: use Ki, Mi, Gi or bytes" ;;
  esac
}

# Runs in the supervisor, like spawn: podman run (attached, so it lives as long as the container)
# with its output in the run's log dir.
spawn_container() { # name ns manifest container want-hostnet
  local name=$1 args
  [ "${STOP:-0}" -eq 0 ] || return 0
  mkdir -p "$STATE_DIR/env"
  if ! container_args "$1" "$2" "$3" "$4" "$5" "$STATE_DIR/env/$name.env" >"$STATE_DIR/env/$name.args" \
    2>"$LOG_DIR/$name.log"; then
    echo "$name: $(tail -n 1 "$LOG_DIR/$name.log")" >"$STATE_DIR/failed"
    return 1
  fi
  mapfile -t args <"$STATE_DIR/env/$name.args"
  podman_cmd run "${args[@]}" </dev/null >"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$STATE_DIR/pids/$name"
}

worker_fields() { # pod-name uid pod-ip node-name node-ip pod-ips host-ips → FIELDS
  FIELDS=([metadata.name]=$1 [metadata.uid]=$2 [status.podIP]=$3 [metadata.namespace]=testbed
    [spec.nodeName]=$4 [status.hostIP]=$5 [status.podIPs]=$6 [status.hostIPs]=$7)
}

# The run's containers (by the label every one gets), removed by force.
remove_containers() { # run
  command -v podman >/dev/null || return 0
  local ids
  mapfile -t ids < <(podman_cmd ps -aq --filter "label=podperf.testbed.run=$1" 2>/dev/null)
  [ ${#ids[@]} -eq 0 ] || podman_cmd rm -f -t 0 "${ids[@]}" >/dev/null 2>&1 ||
    log "warning: could not remove containers ${ids[*]} of run $1"
}

# The run's nats-server config: JetStream in the state dir, bound to the infra address, and
# podperf's users and permissions from broker-config/auth.conf (passwords from the environment).
nats_config() {
  cat <<CONF
server_name: ppt-$RUN_ID
listen: $INFRA_IP:$NATS_PORT
jetstream { store_dir: "$STATE_DIR/jetstream" }
include ./auth.conf
CONF
}

# The supervisor: a detached process (own session, so Ctrl-C on a terminal does not reach it) that
# is the parent of every process of the run, so each one is reaped when it exits — also where
# PID 1 does not reap orphans (containers, this VM). SIGTERM (from teardown) makes it start
# nothing more and acknowledge with the file `stopped`; it exits once all its children have exited.
cmd_supervise() { # run
  load_state "$1"
  STOP=0
  trap '' INT HUP
  trap 'STOP=1; : >"$STATE_DIR/stopped"' TERM
  mkdir -p "$STATE_DIR/pids"
  local nats redis n p
  # up --worker-cpus: the workers' command prefix (their tools inherit the affinity).
  PIN=()
  [ -z "${WORKER_CPUS:-}" ] || PIN=(taskset -c "$WORKER_CPUS")
  nats=$(resolve_bin nats-server)
  redis=$(resolve_bin redis-server)

  nats_config >"$STATE_DIR/nats.conf"
  cp "$REPO/broker-config/auth.conf" "$STATE_DIR/auth.conf" # includes are relative to the config"
  spawn nats "$INFRA_NS" PODPERF_WORKER_PASSWORD="$PODPERF_WORKER_PASSWORD" \
    PODPERF_DISPATCHER_PASSWORD="$PODPERF_DISPATCHER_PASSWORD" PODPERF_CLI_PASSWORD="$PODPERF_CLI_PASSWORD" \
    PODPERF_WEB_PASSWORD="$PODPERF_WEB_PASSWORD" \
    PODPERF_ADMIN_PASSWORD="$PODPERF_ADMIN_PASSWORD" -- "$nats" -c "$STATE_DIR/nats.conf"
  local nats_pid=$!
  spawn redis "$INFRA_NS" -- "$redis" --bind "$INFRA_IP" --port "$REDIS_PORT" --dir "$STATE_DIR" \
    --save "" --appendonly no --daemonize no --protected-mode no
  local redis_pid=$!
  if wait_for "nats-server" 15 "$nats_pid" tcp_ready "$INFRA_NS" "$INFRA_IP" "$NATS_PORT" &&
    wait_for "redis-server" 15 "$redis_pid" tcp_ready "$INFRA_NS" "$INFRA_IP" "$REDIS_PORT"; then
    if [ -n "${IMAGE:-}" ]; then
      FIELDS=([metadata.name]=podperf-dispatcher-testbed)
      SECRETS=([PODPERF_WORKER_PASSWORD]=$PODPERF_WORKER_PASSWORD [PODPERF_CLI_PASSWORD]=$PODPERF_CLI_PASSWORD
        [PODPERF_DISPATCHER_PASSWORD]=$PODPERF_DISPATCHER_PASSWORD [PODPERF_REDIS_PASSWORD]="")
      OVERRIDES=([PODPERF_NATS_URL]=$NATS_URL [PODPERF_REDIS_URL]=$REDIS_URL
        [PODPERF_ALLOWED_CIDRS]="$CLUSTER_CIDR,$UNDERLAY_CIDR" [RUST_LOG]=$RUST_LOG_DEFAULT)
      spawn_container dispatcher "$INFRA_NS" "$DISPATCHER_MANIFEST" dispatcher false
    else
      spawn dispatcher "$INFRA_NS" PODPERF_NATS_URL="$NATS_URL" PODPERF_REDIS_URL="$REDIS_URL" \
        PODPERF_NATS_USER=dispatcher PODPERF_NATS_PASSWORD="$PODPERF_DISPATCHER_PASSWORD" \
        PODPERF_ALLOWED_CIDRS="$CLUSTER_CIDR,$UNDERLAY_CIDR" -- "$BIN_DIR/podperf-dispatcher"
    fi
    if wait_for "podperf-dispatcher API" "$([ -n "${IMAGE:-}" ] && echo 60 || echo 20)" $! api_ready; then
      OVERRIDES=([PODPERF_NATS_URL]=$NATS_URL [RUST_LOG]=$RUST_LOG_DEFAULT)
      if [ -n "${IMAGE:-}" ]; then
        # podperf-web as its Deployment runs it: on 0.0.0.0:8080 of the infra namespace, so with a
        # token (this run's own, in the state dir, readable by root only).
        local web_token
        web_token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
        (umask 077 && printf '%s\n' "$web_token" >"$STATE_DIR/web-token")
        FIELDS=([metadata.name]=podperf-web-testbed)
        SECRETS[PODPERF_WEB_PASSWORD]=$PODPERF_WEB_PASSWORD
        SECRETS[PODPERF_WEB_TOKEN]=$web_token
        spawn_container web "$INFRA_NS" "$WEB_MANIFEST" web false
      elif [ -x "${BIN_DIR:-}/podperf-web" ]; then
        spawn web "$INFRA_NS" PODPERF_NATS_URL="$NATS_URL" PODPERF_NATS_USER=web \
          PODPERF_NATS_PASSWORD="$PODPERF_WEB_PASSWORD" PODPERF_WEB_LISTEN="127.0.0.1:$WEB_PORT" \
          -- "$BIN_DIR/podperf-web"
      fi
      {
        printf 'name\trole\tnetns\tnode\tpod_ip\tnode_ip\tworker_id\tiperf3_port\n'
        for ((n = 0; n < NODES; n++)); do
          local nip uid
          nip=$(node_ip "$n")
          for ((p = 0; p < PODS; p++)); do
            uid=$(new_uid)
            if [ -n "${IMAGE:-}" ]; then
              worker_fields "pod-$n-$p" "$uid" "$(pod_ip "$n" "$p")" "node-$n" "$nip" \
                "$(ips "$(pod_ip "$n" "$p")" "$(pod_ip6 "$n" "$p")")" "$(ips "$nip" "$(node_ip6 "$n")")"
              spawn_container "pod-$n-$p" "$(ns_pod "$RUN_ID" "$n" "$p")" "$WORKER_POD_MANIFEST" worker false
            else
              spawn "pod-$n-$p" "$(ns_pod "$RUN_ID" "$n" "$p")" POD_NAME="pod-$n-$p" POD_UID="$uid" \
                POD_NAMESPACE=testbed POD_IP="$(pod_ip "$n" "$p")" NODE_NAME="node-$n" NODE_IP="$nip" \
                POD_IPS="$(ips "$(pod_ip "$n" "$p")" "$(pod_ip6 "$n" "$p")")" \
                HOST_IPS="$(ips "$nip" "$(node_ip6 "$n")")" \
                PODPERF_NATS_URL="$NATS_URL" PODPERF_IPERF3_PORT=$POD_IPERF3_PORT \
                PODPERF_NATS_USER=worker PODPERF_NATS_PASSWORD="$PODPERF_WORKER_PASSWORD" \
                PODPERF_SHUTDOWN_GRACE_S=2 -- "${PIN[@]}" "$BIN_DIR/podperf-worker"
            fi
            printf 'pod-%s-%s\tpod\t%s\tnode-%s\t%s\t%s\t%s\t%s\n' "$n" "$p" "$(ns_pod "$RUN_ID" "$n" "$p")" \
              "$n" "$(pod_ip "$n" "$p")" "$nip" "$uid" "$POD_IPERF3_PORT"
          done
          uid=$(new_uid)
          if [ -n "${IMAGE:-}" ]; then
            worker_fields "host-$n" "$uid" "$nip" "node-$n" "$nip" \
              "$(ips "$nip" "$(node_ip6 "$n")")" "$(ips "$nip" "$(node_ip6 "$n")")"
            spawn_container "host-$n" "$(ns_node "$RUN_ID" "$n")" "$WORKER_HOST_MANIFEST" worker true
          else
            spawn "host-$n" "$(ns_node "$RUN_ID" "$n")" POD_NAME="host-$n" POD_UID="$uid" \
              POD_NAMESPACE=testbed POD_IP="$nip" NODE_NAME="node-$n" NODE_IP="$nip" \
              POD_IPS="$(ips "$nip" "$(node_ip6 "$n")")" HOST_IPS="$(ips "$nip" "$(node_ip6 "$n")")" \
              PODPERF_HOST_NETWORK=true PODPERF_NATS_URL="$NATS_URL" PODPERF_IPERF3_PORT=$HOST_IPERF3_PORT \
              PODPERF_NATS_USER=worker PODPERF_NATS_PASSWORD="$PODPERF_WORKER_PASSWORD" \
              PODPERF_SHUTDOWN_GRACE_S=2 -- "${PIN[@]}" "$BIN_DIR/podperf-worker"
          fi
          printf 'host-%s\thost\t%s\tnode-%s\t%s\t%s\t%s\t%s\n' "$n" "$(ns_node "$RUN_ID" "$n")" "$n" \
            "$nip" "$nip" "$uid" "$HOST_IPERF3_PORT"
        done
      } >"$STATE_DIR/workers.tsv"
      [ "$STOP" -eq 1 ] || touch "$STATE_DIR/started"
    fi
  fi
  if [ -f "$STATE_DIR/failed" ]; then # stop what did start; `up` tears the rest down
    local f
    for f in "$STATE_DIR"/pids/*; do kill -KILL "$(cat "$f")" 2>/dev/null || true; done
  fi
  until wait; do :; done # a trapped signal interrupts wait; go on until every child is reaped
}

count_workers() {
  as_cli "$INFRA_NS" "$BIN_DIR/podperf" -o json workers 2>/dev/null |
    grep -c '"worker_id"' || true
}

log_tails() { # the last lines of every log of the run, for failure reports
  local f
  for f in "$LOG_DIR"/*.log; do
    [ -s "$f" ] || continue
    printf '%s\n' "--- $(basename "$f") (last 15 lines) ---" >&2
    tail -n 15 "$f" >&2
  done
}

# --- up / down ------------------------------------------------------------------------------------

UP_RUN=""
UP_DONE=0
TEARING=0

on_exit() { # for up and run: tear down whatever was made unless up finished (and run is over)
  local st=$?
  if [ -n "$UP_RUN" ] && [ "$UP_DONE" -eq 0 ] && [ "$TEARING" -eq 0 ]; then
    if [ "$st" -ne 0 ] && [ "$st" -ne 130 ] && [ "$st" -ne 143 ] && [ -d "${LOG_DIR:-/nonexistent}" ]; then
      log_tails
    fi
    log "tearing down run $UP_RUN (status $st)"
    teardown "$UP_RUN" "${KEEP_LOGS:-0}" || true
  fi
  exit "$st"
}

cmd_up() { # also used by run; sets UP_RUN/RUN_ID/...
  local nodes=2 pods=2 run="" bin_dir="" explicit_bin=0 timeout=60 wait_workers=1 image=""
  while [ $# -gt 0 ]; do
    case $1 in
      --nodes) nodes=${2:?}; shift 2 ;;
      --pods) pods=${2:?}; shift 2 ;;
      --run-id) run=${2:?}; shift 2 ;;
      --bin-dir) bin_dir=${2:?}; explicit_bin=1; shift 2 ;;
      --timeout) timeout=${2:?}; shift 2 ;;
      --no-wait) wait_workers=0; shift ;;
      --pod-mtu) POD_MTU=${2:?}; shift 2 ;;
      --worker-cpus) WORKER_CPUS=${2:?}; shift 2 ;;
      --image) image=${2:?}; shift 2 ;;
      --dual-stack) DUAL_STACK=1; shift ;;
      --keep-logs) KEEP_LOGS=1; shift ;;
      -h | --help) usage ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  if ! [[ $nodes =~ ^[0-9]+$ ]] || [ "$nodes" -lt 1 ] || [ "$nodes" -gt $MAX_NODES ]; then
    die "--nodes must be 1..$MAX_NODES"
  fi
  if ! [[ $pods =~ ^[0-9]+$ ]] || [ "$pods" -gt $MAX_PODS ]; then die "--pods must be 0..$MAX_PODS"; fi
  [[ $timeout =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
  if ! [[ $POD_MTU =~ ^[0-9]+$ ]] || [ "$POD_MTU" -lt 1280 ] || [ "$POD_MTU" -gt 9000 ]; then
    die "--pod-mtu must be 1280..9000"
  fi
  if [ -n "$WORKER_CPUS" ]; then
    [[ $WORKER_CPUS =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] ||
      die "--worker-cpus: a CPU list like 0, 0-1 or 0,2 (got '$WORKER_CPUS')"
    taskset -c "$WORKER_CPUS" true 2>/dev/null || die "--worker-cpus $WORKER_CPUS: no such CPUs here (nproc: $(nproc))"
  fi
  need_root
  local t
  for t in ip bridge nats-server redis-server; do command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs it)"; done
  for t in ping traceroute iperf3; do
    command -v "$t" >/dev/null || log "warning: $t not found: the workers will report it unavailable"
  done
  [ -z "$image" ] || check_image "$image"
  bin_dir=${bin_dir:-${PODPERF_BIN_DIR:-$REPO/target/debug}}
  bin_dir=$(readlink -f "$bin_dir" || echo "$bin_dir")
  ensure_bins "$bin_dir" "$explicit_bin"

  if [ -z "$run" ]; then
    run=$(new_run_id)
  else
    valid_run_id "$run" || die "bad run id '$run' (1-8 of [a-z0-9])"
  fi
  [ -e "$STATE_ROOT/$run" ] && die "run $run already exists (testbed.sh down --run-id $run)"
  [ -z "$(run_namespaces "$run")" ] || die "namespaces of run $run already exist (testbed.sh down --run-id $run)"

  # From here on, any failure or signal tears the run down.
  UP_RUN=$run
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP

  STATE_DIR=$STATE_ROOT/$run
  LOG_DIR=$STATE_DIR/logs
  mkdir -p "$LOG_DIR" "$STATE_DIR/pids"
  : >"$STATE_DIR/namespaces"
  RUN_ID=$run NODES=$nodes PODS=$pods BIN_DIR=$bin_dir IMAGE=$image
  INFRA_NS=$(ns_infra "$run")
  UNDERLAY_NS=$(ns_underlay "$run")
  NATS_URL=nats://$INFRA_IP:$NATS_PORT
  REDIS_URL=redis://$INFRA_IP:$REDIS_PORT
  local ns_list=("$UNDERLAY_NS" "$INFRA_NS") n p
  for ((n = 0; n < nodes; n++)); do
    ns_list+=("$(ns_node "$run" "$n")")
    for ((p = 0; p < pods; p++)); do ns_list+=("$(ns_pod "$run" "$n" "$p")"); done
  done
  {
    local v
    DUAL_STACK=${DUAL_STACK:-0}
    for v in RUN_ID NODES PODS BIN_DIR IMAGE INFRA_NS UNDERLAY_NS NATS_URL REDIS_URL INFRA_IP LOG_DIR STATE_DIR WORKER_CPUS DUAL_STACK; do
      printf '%s=%q\n' "$v" "${!v}"
    done
    # NATS runs with authentication on (broker-config/auth.conf): one random password per role.
    for v in WORKER DISPATCHER CLI WEB ADMIN; do
      printf 'PODPERF_%s_PASSWORD=%q\n' "$v" "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    done
    printf 'UNDERLAY_CIDR=%q\nCLUSTER_CIDR=%q\nNAMESPACES=%q\nCREATED_AT=%q\n' \
      "$UNDERLAY_CIDR" "$CLUSTER_CIDR" "${ns_list[*]}" "$(date -Is)"
  } >"$STATE_DIR/state.env"
  chmod 600 "$STATE_DIR/state.env"
  # shellcheck disable=SC1091
  source "$STATE_DIR/state.env" # the passwords

  local t0 t1 t2 t3
  t0=$(now_ms)
  build_network "$run" "$nodes" "$pods"
  t1=$(now_ms)
  log "run $run: network of $nodes nodes x $pods pods built in $((t1 - t0)) ms ($((${#ns_list[@]})) namespaces)"

  setsid "$BASH" "$SELF" __supervise "$run" </dev/null >"$LOG_DIR/supervisor.log" 2>&1 &
  local sup=$!
  echo "$sup" >"$STATE_DIR/supervisor.pid"
  until [ -f "$STATE_DIR/started" ]; do
    if [ -f "$STATE_DIR/failed" ] || ! alive "$sup"; then
      die "start-up failed: $(cat "$STATE_DIR/failed" 2>/dev/null || echo 'the supervisor exited')"
    fi
    sleep 0.05
  done
  t2=$(now_ms)
  log "nats-server, redis-server, the dispatcher ready at $NATS_URL and $((nodes * pods + nodes)) workers started in $((t2 - t1)) ms"

  local want=$((nodes * pods + nodes)) have=0 deadline
  if [ "$wait_workers" -eq 1 ]; then
    deadline=$(($(now_ms) + timeout * 1000))
    while :; do
      have=$(count_workers)
      [ "$have" -ge "$want" ] && break
      [ "$(now_ms)" -ge "$deadline" ] && die "only $have of $want workers listed after ${timeout}s"
      sleep 0.1
    done
    t3=$(now_ms)
    log "all $want workers ($((nodes * pods)) pods + $nodes host-network) listed in $((t3 - t2)) ms"
  fi
  UP_DONE=1
  if [ "${IN_RUN:-0}" -eq 0 ]; then
    trap - EXIT INT TERM HUP
    log "up in $(($(now_ms) - t0)) ms; state: $STATE_DIR/state.env, logs: $LOG_DIR"
    printf 'RUN_ID=%s\nNATS_URL=%s\nSTATE_DIR=%s\n' "$run" "$NATS_URL" "$STATE_DIR"
    log "next: $0 exec --run-id $run -- podperf workers;  $0 down --run-id $run"
  fi
  if [ -n "${IMAGE:-}" ]; then
    log "podperf-web (from the image): http://127.0.0.1:$WEB_PORT/ in the infra namespace, token in" \
      "$STATE_DIR/web-token, e.g. $0 exec --run-id $run -- curl -s -H \"Authorization: Bearer \$(cat" \
      "$STATE_DIR/web-token)\" http://127.0.0.1:$WEB_PORT/api/v2/workers"
  elif [ -x "${BIN_DIR:-}/podperf-web" ]; then
    log "podperf-web: http://127.0.0.1:$WEB_PORT/ in the infra namespace, e.g." \
      "$0 exec --run-id $run -- curl -s http://127.0.0.1:$WEB_PORT/api/v2/workers"
  fi
}

kill_and_wait() { # signal timeout_ms pids...
  local sig=$1 timeout=$2 pid deadline left
  shift 2
  [ $# -gt 0 ] || return 0
  for pid in "$@"; do kill "-$sig" "$pid" 2>/dev/null || true; done
  deadline=$(($(now_ms) + timeout))
  while :; do
    left=0
    for pid in "$@"; do alive "$pid" && left=1 && break; done
    [ $left -eq 0 ] && return 0
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

pids_in() { # namespaces...
  local ns
  for ns in "$@"; do ip netns pids "$ns" 2>/dev/null || true; done | sort -un
}

teardown() { # run keep_logs
  local run=$1 keep=${2:-0} t0 nss=() workers_ns=() infra_ns=() ns sup="" pids round
  TEARING=1
  trap '' INT TERM HUP # a second Ctrl-C must not leave half a testbed behind
  t0=$(now_ms)
  # Stop the supervisor from starting anything more (it acknowledges with the file `stopped`).
  sup=$(cat "$STATE_ROOT/$run/supervisor.pid" 2>/dev/null || true)
  if [ -n "$sup" ] && grep -qa "__supervise" "/proc/$sup/cmdline" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$sup/cmdline" | grep -q " $run "; then
    kill -TERM "$sup" 2>/dev/null || true
    for ((round = 0; round < 100; round++)); do
      [ -f "$STATE_ROOT/$run/stopped" ] || ! alive "$sup" && break
      sleep 0.03
    done
  else
    sup=""
  fi
  mapfile -t nss < <(run_namespaces "$run")
  for ns in "${nss[@]}"; do
    case $ns in
      *-ul | *-infra) infra_ns+=("$ns") ;;
      *) workers_ns+=("$ns") ;;
    esac
  done
  # Workers first (they deregister), then dispatcher/NATS/Redis, then anything left, by force
  # (also the supervisor's children not yet inside a namespace).
  mapfile -t pids < <(pids_in "${workers_ns[@]}")
  kill_and_wait TERM 4000 "${pids[@]}" || true
  mapfile -t pids < <(pids_in "${infra_ns[@]}")
  kill_and_wait TERM 3000 "${pids[@]}" || true
  for ((round = 0; round < 5; round++)); do
    mapfile -t pids < <({ pids_in "${nss[@]}"; [ -z "$sup" ] || pgrep -P "$sup" || true; } | sort -un)
    [ ${#pids[@]} -eq 0 ] && break
    kill_and_wait KILL 2000 "${pids[@]}" || log "warning: processes of run $run still alive: ${pids[*]}"
  done
  # Containers of an --image run are normally gone already (podman run --rm); a run without
  # state (a leftover) is checked too.
  if ! grep -qsxE "IMAGE=(''|)" "$STATE_ROOT/$run/state.env"; then remove_containers "$run"; fi
  # The supervisor exits by itself once its children are reaped.
  [ -z "$sup" ] || kill_and_wait 0 1000 "$sup" || kill_and_wait KILL 1000 "$sup" || true
  # Pods before nodes before the underlay: a veth pair dies with either end.
  for ns in $(printf '%s\n' "${nss[@]}" | awk '{print (/-p[0-9]+$/ ? 0 : /-n[0-9]+$/ ? 1 : 2) "\t" $0}' | sort -n | cut -f2); do
    ip netns del "$ns" 2>/dev/null || log "warning: could not delete namespace $ns"
  done
  if [ -d "$STATE_ROOT/$run" ]; then
    if [ "$keep" -eq 1 ]; then
      log "logs kept in $STATE_ROOT/$run/logs"
      rm -f "$STATE_ROOT/$run/state.env"
    else
      rm -rf "${STATE_ROOT:?}/$run"
    fi
  fi
  log "run $run torn down in $(($(now_ms) - t0)) ms (${#nss[@]} namespaces)"
}

cmd_down() {
  local run="" all=0 keep=0 r
  while [ $# -gt 0 ]; do
    case $1 in
      --run-id) run=${2:?}; shift 2 ;;
      --all) all=1; shift ;;
      --keep-logs) keep=1; shift ;;
      -h | --help) usage ;;
      *) die "down: unknown argument '$1'" ;;
    esac
  done
  need_root
  if [ $all -eq 1 ]; then
    local runs
    mapfile -t runs < <(all_runs)
    [ ${#runs[@]} -gt 0 ] || log "nothing to remove"
    for r in "${runs[@]}"; do teardown "$r" "$keep"; done
    return 0
  fi
  run=$(pick_run "$run")
  teardown "$run" "$keep"
}

ns_for() { # run name -> namespace
  case $2 in
    infra) ns_infra "$1" ;;
    underlay | ul) ns_underlay "$1" ;;
    node-[0-9]* | host-[0-9]*) ns_node "$1" "${2#*-}" ;;
    pod-[0-9]*-[0-9]*)
      local rest=${2#pod-}
      ns_pod "$1" "${rest%-*}" "${rest#*-}"
      ;;
    *) die "--in: use infra, underlay, node-N, host-N or pod-N-M (got '$2')" ;;
  esac
}

exec_in() { # ns cmd...  (PODPERF_NATS_URL set, the run's binaries first on PATH)
  local ns=$1
  shift
  as_cli "$ns" PATH="$BIN_DIR:$PATH" \
    PODPERF_TESTBED_RUN_ID="$RUN_ID" PODPERF_TESTBED_STATE_DIR="$STATE_DIR" "$@"
}

cmd_exec() {
  local run="" target=infra
  while [ $# -gt 0 ]; do
    case $1 in
      --run-id) run=${2:?}; shift 2 ;;
      --in) target=${2:?}; shift 2 ;;
      --) shift; break ;;
      -h | --help) usage ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || die "exec: no command (testbed.sh exec -- CMD...)"
  need_root
  run=$(pick_run "$run")
  load_state "$run"
  local ns
  ns=$(ns_for "$run" "$target")
  ip netns list | awk '{print $1}' | grep -qx "$ns" || die "namespace $ns does not exist"
  exec_in "$ns" "$@"
}

cmd_run() {
  local up_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    up_args+=("$1")
    shift
  done
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "run: no command (testbed.sh run [--nodes N] [--pods M] -- CMD...)"
  IN_RUN=1
  cmd_up "${up_args[@]}"
  UP_DONE=0 # from now on the EXIT trap tears down, whatever happens
  local st=0
  exec_in "$INFRA_NS" "$@" || st=$?
  TEARING=1
  teardown "$UP_RUN" "${KEEP_LOGS:-0}"
  trap - EXIT
  exit "$st"
}

cmd_status() {
  local run="" r
  while [ $# -gt 0 ]; do
    case $1 in
      --run-id) run=${2:?}; shift 2 ;;
      *) die "status: unknown argument '$1'" ;;
    esac
  done
  if [ -z "$run" ]; then
    local runs
    mapfile -t runs < <(all_runs)
    [ ${#runs[@]} -gt 0 ] || { echo "no testbed runs"; return 0; }
  else
    runs=("$run")
  fi
  for r in "${runs[@]}"; do
    local nss
    mapfile -t nss < <(run_namespaces "$r")
    echo "run $r: ${#nss[@]} namespaces, $(pids_in "${nss[@]}" | wc -l) processes"
    if [ -f "$STATE_ROOT/$r/state.env" ]; then
      sed 's/^/  /' "$STATE_ROOT/$r/state.env"
      [ -f "$STATE_ROOT/$r/workers.tsv" ] && column -t -s $'\t' "$STATE_ROOT/$r/workers.tsv" | sed 's/^/  /'
    else
      echo "  (no state: a leftover; remove it with testbed.sh down --run-id $r)"
    fi
  done
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    exec) cmd_exec "$@" ;;
    run) cmd_run "$@" ;;
    status) cmd_status "$@" ;;
    check) cmd_check ;;
    __supervise) cmd_supervise "$@" ;;
    -h | --help | help) usage ;;
    *) usage 2 ;;
  esac
}

main "$@"

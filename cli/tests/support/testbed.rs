//! One testbed run (`testbed/testbed.sh`) for the tests that need the netns cluster replica: the
//! testbed end-to-end test (`tests/testbed.rs`) and fault scenario 6 (`tests/faults/underlay.rs`).
//! Included by both with `#[path]`; not every user needs every helper.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use podperf_protocol::outcome::JobState;
use podperf_testkit::workspace_bin;
use serde_json::Value;

pub fn script() -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testbed/testbed.sh"
    ));
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// Where testbed.sh keeps each run's state (`PODPERF_TESTBED_STATE`, as the script reads it).
pub fn state_root() -> PathBuf {
    std::env::var_os("PODPERF_TESTBED_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/podperf-testbed"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether the testbed can run here: `testbed.sh check` exits 3 when network namespaces cannot be
/// made (not root, no `ip netns`); any other failure (a missing tool) fails the test.
pub fn testbed_usable() -> bool {
    let out = Command::new(script())
        .arg("check")
        .output()
        .expect("run testbed.sh check");
    match out.status.code() {
        Some(0) => true,
        Some(3) => {
            eprintln!(
                "SKIPPED: the netns testbed needs root and working `ip netns` here: {}",
                text(&out.stderr).trim()
            );
            false
        }
        _ => panic!(
            "testbed.sh check failed: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        ),
    }
}

/// testbed.sh's addresses: the infra namespace (NATS, Redis, the dispatcher) on the underlay,
/// and Flannel's VXLAN port.
pub const INFRA_IP: &str = "198.18.0.2";
pub const VXLAN_PORT: u16 = 8472;
/// The nftables bridge table of [`Testbed::inject`] in the underlay namespace.
pub const FAULT_TABLE: &str = "pp_fault";

/// A fault on the underlay switch, for node `N` (its port `nN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The node's port down: it neither sends nor receives (NATS included).
    LinkDown(u32),
    /// `percent` of the node's frames dropped at random, each way (`numgen random mod 100`);
    /// its NATS traffic is spared.
    RandomDrop { node: u32, percent: u32 },
    /// The ICMP echo requests the node sends are dropped; its replies pass (one-way block).
    NoRequestsFrom(u32),
    /// The ICMP echo requests sent to the node are dropped; its own requests and their replies
    /// pass (one-way block, the other way).
    NoRequestsTo(u32),
}

/// One testbed run; `Drop` tears it down, so a failing assertion leaves nothing behind.
pub struct Testbed {
    pub run_id: String,
    torn_down: bool,
}

impl Testbed {
    /// Brings up `nodes` × `pods` with a fresh run id starting with `tag` (one letter per test
    /// file, so parallel runs are told apart in `testbed.sh status`).
    pub fn up(nodes: u32, pods: u32, tag: char) -> Testbed {
        Testbed::up_with(nodes, pods, tag, &[])
    }

    /// As [`Testbed::up`], with more `testbed.sh up` arguments (e.g. `--image TAG`).
    pub fn up_with(nodes: u32, pods: u32, tag: char, extra: &[&str]) -> Testbed {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let run_id = format!("{tag}{:06x}", (std::process::id() ^ nanos) & 0xff_ffff);
        // The binaries built next to this test executable (cargo build --workspace --bins).
        let bin_dir = workspace_bin("podperf")
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let tb = Testbed {
            run_id,
            torn_down: false,
        };
        let out = Command::new(script())
            .args([
                "up",
                "--nodes",
                &nodes.to_string(),
                "--pods",
                &pods.to_string(),
            ])
            .args(["--run-id", &tb.run_id, "--timeout", "60"])
            .args(extra)
            .arg("--bin-dir")
            .arg(&bin_dir)
            .output()
            .expect("run testbed.sh up");
        eprintln!("{}", text(&out.stderr));
        assert!(
            out.status.success(),
            "testbed.sh up failed ({}): {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        tb
    }

    /// `testbed.sh exec --run-id ID [--in PLACE] -- ARGS` (default: the infra namespace, with
    /// PODPERF_NATS_URL and the CLI's credentials set).
    pub fn exec_in(&self, place: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(script());
        cmd.args(["exec", "--run-id", &self.run_id]);
        if let Some(p) = place {
            cmd.args(["--in", p]);
        }
        cmd.arg("--")
            .args(args)
            .output()
            .expect("run testbed.sh exec")
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        self.exec_in(None, args)
    }

    /// `podperf -o json ARGS` in the infra namespace: exit code, JSON (or Null) and stderr.
    pub fn try_podperf(&self, args: &[&str]) -> (Option<i32>, Value, String) {
        let mut all = vec!["podperf", "-o", "json"];
        all.extend_from_slice(args);
        let out = self.exec(&all);
        let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), v, text(&out.stderr))
    }

    /// `podperf -o json ARGS`; panics (with the logs) unless it succeeds and prints JSON.
    pub fn podperf(&self, args: &[&str]) -> Value {
        let (code, v, err) = self.try_podperf(args);
        assert!(
            code == Some(0) && !v.is_null(),
            "podperf {args:?} failed ({code:?}, JSON {v}): {err}\n{}",
            self.logs()
        );
        v
    }

    /// Submits a `podperf run …` without waiting; returns the job id.
    pub fn submit(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.push("--no-wait");
        let v = self.podperf(&all);
        v["job_ids"][0].as_str().unwrap().to_string()
    }

    /// Polls `podperf job ID` until the job is terminal.
    pub fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, v, _) = self.try_podperf(&["job", id]);
            let state = serde_json::from_value::<JobState>(v["state"].clone());
            if state.is_ok_and(JobState::is_terminal) {
                return v;
            }
            assert!(Instant::now() < deadline, "job {id} not terminal: {v}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The pod names of the live workers, sorted.
    pub fn pods(&self) -> Vec<String> {
        let (_, v, _) = self.try_podperf(&["workers"]);
        let mut pods: Vec<String> = v["workers"]
            .as_array()
            .map(|ws| {
                ws.iter()
                    .filter_map(|w| w["pod_name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        pods.sort();
        pods
    }

    /// Waits until the live workers are exactly `want`; returns how long that took.
    pub fn wait_pods(&self, want: &[&str], timeout: Duration) -> Duration {
        let t0 = Instant::now();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        loop {
            let pods = self.pods();
            if pods == want {
                return t0.elapsed();
            }
            assert!(t0.elapsed() < timeout, "workers {pods:?}, want {want:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of every process's log in the run's state dir, for failure messages.
    pub fn logs(&self) -> String {
        let dir = state_root().join(&self.run_id).join("logs");
        let mut s = String::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                let log = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                s += &format!("--- {} ---\n", p.display());
                for line in tail.iter().rev() {
                    s += line;
                    s.push('\n');
                }
            }
        }
        s
    }

    /// A command in the underlay switch's namespace; panics unless it succeeds.
    pub fn underlay(&self, args: &[&str]) {
        let out = self.exec_in(Some("underlay"), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }

    /// Injects `fault` on the underlay switch (the bridge `ul0`, one port `nN` per node):
    /// nftables rules in the bridge table [`FAULT_TABLE`], or a port's link state.
    pub fn inject(&self, fault: Fault) {
        match fault {
            Fault::LinkDown(n) => self.underlay(&["ip", "link", "set", &format!("n{n}"), "down"]),
            Fault::RandomDrop { node, percent } => {
                // Both ways, everything but the node's traffic with infra (NATS stays up).
                for dir in ["iifname", "oifname"] {
                    self.fault_rule(&format!(
                        "{dir} \"n{node}\" ip saddr != {INFRA_IP} ip daddr != {INFRA_IP} \
                         numgen random mod 100 < {percent} drop"
                    ));
                }
            }
            Fault::NoRequestsFrom(n) => self.block_echo_requests("iifname", n),
            Fault::NoRequestsTo(n) => self.block_echo_requests("oifname", n),
        }
    }

    /// Undoes [`Testbed::inject`].
    pub fn clear(&self, fault: Fault) {
        match fault {
            Fault::LinkDown(n) => self.underlay(&["ip", "link", "set", &format!("n{n}"), "up"]),
            _ => self.underlay(&["nft", "delete", "table", "bridge", FAULT_TABLE]),
        }
    }

    fn fault_rule(&self, rule: &str) {
        let chain = format!(
            "add chain bridge {FAULT_TABLE} forward {{ type filter hook forward priority 0; }}"
        );
        self.underlay(&["nft", "add", "table", "bridge", FAULT_TABLE]);
        self.underlay(&["nft", &chain]);
        self.underlay(&[
            "nft",
            &format!("add rule bridge {FAULT_TABLE} forward {rule}"),
        ]);
    }

    /// Drops the ICMP echo requests that enter (`iifname`) or leave (`oifname`) the switch
    /// through node `n`'s port — and only those, so the replies still pass: between node IPs
    /// they are plain ICMP; between pods (and a node and a pod across nodes) they are inside
    /// Flannel's VXLAN (UDP 8472), matched at fixed offsets from the outer UDP header: UDP 8 +
    /// VXLAN 8 + inner Ethernet 14 bytes, then an inner IPv4 header without options (first
    /// byte 0x45, protocol at +9 = 1, ICMP), then the ICMP type (+20) = 8, echo request.
    fn block_echo_requests(&self, dir: &str, n: u32) {
        let port = format!("{dir} \"n{n}\"");
        self.fault_rule(&format!("{port} icmp type echo-request drop"));
        self.fault_rule(&format!(
            "{port} udp dport {VXLAN_PORT} @th,240,8 0x45 @th,312,8 1 @th,400,8 8 drop"
        ));
    }

    pub fn down(&mut self) -> Output {
        self.torn_down = true;
        Command::new(script())
            .args(["down", "--run-id", &self.run_id])
            .output()
            .expect("run testbed.sh down")
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if !self.torn_down {
            let _ = self.down();
        }
    }
}

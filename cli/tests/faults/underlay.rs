//! Scenario 6: inside the netns testbed (`testbed/testbed.sh`, 3 nodes × 1 pod, Flannel VXLAN),
//! node 1's underlay link is set down for a while: jobs toward it fail with a clear reason, its
//! workers leave the view, jobs between the other nodes are unaffected, and everything comes back
//! when the link does. Needs root and `ip netns` (skipped, with a message, otherwise).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use podperf_testkit::workspace_bin;
use serde_json::Value;

fn script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testbed/testbed.sh"
    ))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Testbed {
    run_id: String,
}

impl Testbed {
    fn up(nodes: u32, pods: u32) -> Testbed {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tb = Testbed {
            run_id: format!("f{:06x}", (std::process::id() ^ nanos) & 0xff_ffff),
        };
        let bin_dir = workspace_bin("podperf").parent().unwrap().to_path_buf();
        let out = Command::new(script())
            .args([
                "up",
                "--nodes",
                &nodes.to_string(),
                "--pods",
                &pods.to_string(),
            ])
            .args(["--run-id", &tb.run_id, "--timeout", "60", "--bin-dir"])
            .arg(&bin_dir)
            .output()
            .expect("testbed.sh up");
        assert!(
            out.status.success(),
            "testbed.sh up: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        tb
    }

    fn exec_in(&self, place: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(script());
        cmd.args(["exec", "--run-id", &self.run_id]);
        if let Some(p) = place {
            cmd.args(["--in", p]);
        }
        cmd.arg("--").args(args).output().expect("testbed.sh exec")
    }

    /// `podperf -o json ARGS` in the infra namespace: (exit code, JSON or Null).
    fn podperf(&self, args: &[&str]) -> (Option<i32>, Value, String) {
        let mut all = vec!["podperf", "-o", "json"];
        all.extend_from_slice(args);
        let out = self.exec_in(None, &all);
        let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), v, text(&out.stderr))
    }

    fn pods(&self) -> Vec<String> {
        let (_, v, _) = self.podperf(&["workers"]);
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

    fn submit(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.push("--no-wait");
        let (code, v, err) = self.podperf(&all);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        v["job_ids"][0].as_str().unwrap().to_string()
    }

    fn wait_job(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, v, _) = self.podperf(&["job", id]);
            let s = v["state"].as_str().unwrap_or("");
            if [
                "succeeded",
                "failed",
                "timed_out",
                "worker_lost",
                "cancelled",
            ]
            .contains(&s)
            {
                return v;
            }
            assert!(Instant::now() < deadline, "job {id} not terminal: {v}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["down", "--run-id", &self.run_id])
            .output();
    }
}

fn wait_pods(tb: &Testbed, want: &[&str], timeout: Duration) -> Duration {
    let t0 = Instant::now();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    loop {
        let pods = tb.pods();
        if pods == want {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < timeout, "workers {pods:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn s6_a_nodes_underlay_link_down_fails_jobs_toward_it_and_it_comes_back() {
    let check = Command::new(script()).arg("check").output();
    match check.as_ref().map(|o| o.status.code()) {
        Ok(Some(0)) => {}
        _ => {
            eprintln!("SKIPPED: testbed.sh check says the netns testbed cannot run here");
            return;
        }
    }
    let tb = Testbed::up(3, 1);
    let all = [
        "host-0", "host-1", "host-2", "pod-0-0", "pod-1-0", "pod-2-0",
    ];
    wait_pods(&tb, &all, Duration::from_secs(30));
    let ping = |from: &str, to: &str, count: &str| {
        tb.submit(&["run", "ping", "--from", from, "--to", to, "--count", count])
    };
    // Before: a job from node 1 that will still be running when its link goes.
    let from_n1 = ping("pod-1-0", "pod-2-0", "50");
    std::thread::sleep(Duration::from_millis(1500));

    let cut = tb.exec_in(Some("underlay"), &["ip", "link", "set", "n1", "down"]);
    assert!(cut.status.success(), "{}", text(&cut.stderr));
    let down = Instant::now();
    // Right after the cut node 1 is still in the view: a ping toward it gets no reply.
    let toward_n1 = ping("pod-0-0", "pod-1-0", "5");
    let other = ping("pod-0-0", "pod-2-0", "10");
    wait_pods(
        &tb,
        &["host-0", "host-2", "pod-0-0", "pod-2-0"],
        Duration::from_secs(15),
    );
    let offline_after = down.elapsed();
    let (code, _, err) = tb.podperf(&["run", "ping", "--from", "pod-0-0", "--to", "pod-1-0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("worker_offline"), "{err}");

    let toward = tb.wait_job(&toward_n1, Duration::from_secs(30));
    let from = tb.wait_job(&from_n1, Duration::from_secs(30));
    let unaffected = tb.wait_job(&other, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3)); // down "for a while"

    let up = tb.exec_in(Some("underlay"), &["ip", "link", "set", "n1", "up"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let restored = Instant::now();
    let back = wait_pods(&tb, &all, Duration::from_secs(60));
    let after = tb.wait_job(&ping("pod-0-0", "pod-1-0", "3"), Duration::from_secs(30));
    println!(
        "FIGURES s6: link down → node-1 workers out of the view {offline_after:?}; ping toward \
         node 1 → {} ({}: {}); ping from node 1 → {} ({}); ping node 0 → node 2 → {} \
         ({}% loss); link up → workers back {back:?}, ping toward node 1 → {} in {:?}",
        toward["state"],
        toward["reason"],
        toward["message"],
        from["state"],
        from["message"],
        unaffected["state"],
        unaffected["result"]["loss_percent"],
        after["state"],
        restored.elapsed()
    );
    assert_eq!(toward["state"], "failed", "{toward}");
    assert_eq!(toward["reason"], "unreachable", "{toward}");
    assert_eq!(from["state"], "worker_lost", "{from}");
    assert_eq!(unaffected["state"], "succeeded", "{unaffected}");
    assert_eq!(unaffected["result"]["loss_percent"], 0.0, "{unaffected}");
    assert_eq!(after["state"], "succeeded", "{after}");
}

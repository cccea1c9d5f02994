//! A whole podperf system for end-to-end tests: testkit's [`podperf_testkit::Cluster`] (a real
//! nats-server (JetStream) and redis-server, the real `podperf-dispatcher` and `podperf-worker`
//! binaries), driven through the real `podperf`. The tests are synchronous; the cluster's async
//! parts run on a runtime of its own. Derefs to the testkit cluster (`nats`, `redis`,
//! `dispatcher`, `workers`, `logs()`).

#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::process::{Command, Output};
use std::time::Duration;

use podperf_testkit::{wait_until, workspace_bin, ClusterOpts, WorkerSpec};
use serde_json::Value;

/// The liveness TTL the tests run with (seconds).
pub const TTL_S: u64 = 2;

pub struct Cluster {
    inner: podperf_testkit::Cluster,
    rt: tokio::runtime::Runtime,
}

impl Deref for Cluster {
    type Target = podperf_testkit::Cluster;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl Cluster {
    /// nats-server + redis-server (with its append-only file, so it survives a restart) +
    /// dispatcher.
    pub fn start() -> Cluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let opts = ClusterOpts {
            worker_ttl_s: Some(TTL_S),
            ..ClusterOpts::default()
        };
        let inner = rt.block_on(podperf_testkit::Cluster::start(opts));
        Cluster { inner, rt }
    }

    /// A cluster with two workers, `pod-a` on `node-1` at `ip_a` and `pod-b` on `node-2` at `ip_b`,
    /// both listed.
    pub fn two_workers(ip_a: &str, ip_b: &str) -> Cluster {
        let mut c = Cluster::start();
        c.add_worker("pod-a", "node-1", ip_a);
        c.add_worker("pod-b", "node-2", ip_b);
        c.wait_for_workers(&["pod-a", "pod-b"]);
        c
    }

    /// Waits until the dispatcher has stored every result published so far.
    pub fn wait_ingested(&self) {
        let Cluster { inner, rt } = self;
        rt.block_on(inner.wait_ingested(Duration::from_secs(10)));
    }

    /// Starts the dispatcher (again) and waits until its API answers.
    pub fn start_dispatcher(&mut self) {
        let Cluster { inner, rt } = self;
        rt.block_on(inner.start_dispatcher());
    }

    /// Starts a worker process with the env a DaemonSet gives it; returns its index.
    pub fn add_worker(&mut self, pod: &str, node: &str, ip: &str) -> usize {
        self.inner.add_worker(WorkerSpec::new(pod, node, ip))
    }

    /// A worker on the node's network: its pod IP is the node IP.
    pub fn add_host_worker(&mut self, pod: &str, node: &str, ip: &str) -> usize {
        self.inner
            .add_worker(WorkerSpec::new(pod, node, ip).host_network())
    }

    /// Waits until `podperf workers` lists exactly these pods.
    pub fn wait_for_workers(&self, pods: &[&str]) {
        let what = format!("workers {pods:?} are listed");
        wait_until(Duration::from_secs(15), &what, || {
            let mut listed = self.worker_pods();
            listed.sort();
            let mut want: Vec<String> = pods.iter().map(|p| p.to_string()).collect();
            want.sort();
            listed == want
        });
    }

    pub fn worker_pods(&self) -> Vec<String> {
        let out = self.podperf(&["-o", "json", "workers"]);
        if !out.status.success() {
            return vec![];
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        v["workers"]
            .as_array()
            .map(|ws| {
                ws.iter()
                    .filter_map(|w| w["pod_name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn podperf(&self, args: &[&str]) -> Output {
        Command::new(workspace_bin("podperf"))
            .args(args)
            .env("PODPERF_NATS_URL", self.nats_url())
            .output()
            .expect("run podperf")
    }

    /// Runs `podperf -o json ARGS`, returning its JSON (whatever the exit code).
    pub fn json(&self, args: &[&str]) -> (Output, Value) {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let out = self.podperf(&all);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "podperf {args:?} printed no JSON ({e}); stdout: {} stderr: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            )
        });
        (out, v)
    }

    /// Submits with --no-wait; returns the job id.
    pub fn submit(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.push("--no-wait");
        let (out, v) = self.json(&all);
        assert!(
            out.status.success(),
            "submit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        v["job_ids"][0].as_str().expect("a job id").to_string()
    }

    /// Submits `n` pings of `count` replies from `from` to `to` and waits until all run.
    pub fn running_pings(&self, from: &str, to: &str, count: u32, n: usize) -> Vec<String> {
        let count = count.to_string();
        let ping = ["run", "ping", "--from", from, "--to", to, "--count", &count];
        let ids: Vec<String> = (0..n).map(|_| self.submit(&ping)).collect();
        for id in &ids {
            self.wait_job(id, Some("running"), Duration::from_secs(10));
        }
        ids
    }

    pub fn job(&self, id: &str) -> Value {
        self.json(&["job", id]).1
    }

    /// The job, or `None` while the API cannot answer (e.g. NATS is restarting).
    pub fn try_job(&self, id: &str) -> Option<Value> {
        let out = self.podperf(&["-o", "json", "job", id]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// Waits until the job is in `state` (or any terminal state when `state` is None).
    pub fn wait_job(&self, id: &str, state: Option<&str>, timeout: Duration) -> Value {
        let mut last = Value::Null;
        let what = format!("job {id} reaches {state:?}");
        wait_until(timeout, &what, || {
            let Some(job) = self.try_job(id) else {
                return false;
            };
            last = job;
            let s = last["state"].as_str().unwrap_or("");
            match state {
                Some(want) => s == want,
                None => is_terminal(&last),
            }
        });
        last
    }
}

pub use podperf_testkit::process_running;

/// Whether a job record (as `podperf -o json job` prints it) is in a terminal state.
pub fn is_terminal(job: &Value) -> bool {
    serde_json::from_value::<podperf_protocol::outcome::JobState>(job["state"].clone())
        .is_ok_and(podperf_protocol::outcome::JobState::is_terminal)
}

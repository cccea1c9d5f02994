//! The environment a benchmark runs in: its own nats-server and redis-server, the release
//! `podperf-dispatcher` (and real workers) as child processes — testkit's `Cluster` — the
//! machine's description and load, and CPU and RSS of processes read from `/proc`.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use podperf_client::Client;
use podperf_testkit::{Cluster, ClusterOpts, WorkerSpec};
use serde::Serialize;

/// How long one API request may take (a 10,000-worker `workers.list` page is slow).
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// The `PATH` the harness started with. Simulated workers run with an empty `PATH` (see
/// `main.rs`); real child processes get this one back.
pub fn orig_path() -> String {
    std::env::var("PODPERF_BENCH_ORIG_PATH")
        .or_else(|_| std::env::var("PATH"))
        .unwrap_or_default()
}

/// Directory of the release binaries (next to this one).
pub fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let p = bin_dir().join(name);
    if !p.exists() {
        bail!(
            "{} is missing: build with `cargo build --release --workspace --bins`",
            p.display()
        );
    }
    Ok(p)
}

/// nats-server + redis-server + the release dispatcher (testkit's [`Cluster`], whose workers are
/// real release `podperf-worker`s), all stopped on drop. Derefs to the [`Cluster`].
pub struct Stack {
    cluster: Cluster,
}

impl Deref for Stack {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// How to start a [`Stack`].
#[derive(Default, Clone)]
pub struct StackOpts {
    /// nats-server config text (e.g. a larger `max_payload`); `None` = defaults.
    pub nats_conf: Option<String>,
    /// Extra dispatcher environment.
    pub dispatcher_env: Vec<(String, String)>,
}

impl Stack {
    pub async fn start(opts: StackOpts) -> anyhow::Result<Stack> {
        bin("podperf-dispatcher")?;
        let log = std::env::var("PODPERF_BENCH_DISPATCHER_LOG").unwrap_or_else(|_| "warn".into());
        let cluster = Cluster::start(ClusterOpts {
            nats_conf: opts.nats_conf,
            persistent_redis: false,
            worker_ttl_s: None,
            allowed_cidrs: None,
            leader_ttl_ms: None,
            dispatcher_env: opts.dispatcher_env,
            // Real processes get the harness's own PATH back, and nothing else of its env.
            env: vec![("PATH".into(), orig_path())],
            env_clear: true,
            log,
            bin_dir: Some(bin_dir()),
            api_timeout: API_TIMEOUT,
            ready_within: Duration::from_secs(20),
        })
        .await;
        Ok(Stack { cluster })
    }

    /// A NATS connection of its own (simulated workers, listeners, JetStream).
    pub async fn client(&self, name: &str) -> anyhow::Result<async_nats::Client> {
        connect(&self.nats_url(), name).await
    }

    /// An API client on a NATS connection of its own.
    pub async fn api(&self, name: &str) -> anyhow::Result<Client> {
        Ok(Client::new(self.client(name).await?, API_TIMEOUT))
    }

    /// Starts a real release worker; returns its index in `workers`.
    pub fn real_worker(&mut self, pod: &str, node: &str, ip: std::net::IpAddr) -> usize {
        let mut spec = WorkerSpec::new(pod, node, &ip.to_string());
        spec.env.push(("RUST_LOG".into(), "warn".into()));
        self.add_worker(spec)
    }

    /// (pid, label) of the processes whose CPU and RSS the figures report.
    pub fn pids(&self) -> Vec<(u32, &'static str)> {
        let dispatcher = self.dispatcher.as_ref().expect("the dispatcher runs");
        vec![
            (self.nats[0].pid(), "nats-server"),
            (self.redis.pid(), "redis-server"),
            (dispatcher.pid(), "podperf-dispatcher"),
            (
                std::process::id(),
                "podperf-bench (simulated workers + client)",
            ),
        ]
    }
}

pub async fn connect(url: &str, name: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(name)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// The machine a figure was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    pub nats_server: String,
    pub redis_server: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib = field_kib(&meminfo, "MemTotal:").unwrap_or(0);
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu_model,
            mem_total_mib: mem_kib / 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            nats_server: version_of("nats-server", "--version"),
            redis_server: version_of("redis-server", "--version"),
        }
    }
}

fn version_of(tool: &str, flag: &str) -> String {
    let path = std::env::var(match tool {
        "nats-server" => podperf_testkit::NATS_SERVER_ENV,
        _ => podperf_testkit::REDIS_SERVER_ENV,
    })
    .unwrap_or_else(|_| tool.to_string());
    Command::new(path)
        .arg(flag)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The 1-minute load average.
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// CPU seconds (own, and of waited-for children) of a process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub own_s: f64,
    pub children_s: f64,
}

pub fn cpu(pid: u32) -> Cpu {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Cpu::default();
    };
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let tick = clk_tck();
    let at = |i: usize| f.get(i - 3).copied().unwrap_or(0.0) / tick;
    Cpu {
        own_s: at(14) + at(15),
        children_s: at(16) + at(17),
    }
}

fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Resident set size and its peak, in MiB.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = field_kib(&status, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    let hwm = field_kib(&status, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    (rss, hwm)
}

/// CPU use of several processes over a window: call [`Sampler::finish`] at its end.
pub struct Sampler {
    start: Instant,
    before: Vec<(u32, &'static str, Cpu)>,
}

/// One process's share over a window.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub process: String,
    pub pid: u32,
    /// Percent of one core (own threads).
    pub cpu_percent: f64,
    /// Percent of one core spent in its waited-for children (e.g. ping processes).
    pub children_cpu_percent: f64,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
}

impl Sampler {
    pub fn start(pids: &[(u32, &'static str)]) -> Sampler {
        Sampler {
            start: Instant::now(),
            before: pids.iter().map(|(p, n)| (*p, *n, cpu(*p))).collect(),
        }
    }

    pub fn finish(&self) -> Vec<Usage> {
        let secs = self.start.elapsed().as_secs_f64();
        self.before
            .iter()
            .map(|(pid, name, b)| {
                let a = cpu(*pid);
                let (rss, peak) = rss_mib(*pid);
                Usage {
                    process: name.to_string(),
                    pid: *pid,
                    cpu_percent: 100.0 * (a.own_s - b.own_s) / secs,
                    children_cpu_percent: 100.0 * (a.children_s - b.children_s) / secs,
                    rss_mib: rss,
                    peak_rss_mib: peak,
                }
            })
            .collect()
    }
}

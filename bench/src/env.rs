//! The environment a benchmark runs in: its own nats-server and redis-server (testkit), the
//! release `podperf-dispatcher` as a child process, the machine's description and load, and CPU
//! and RSS of processes read from `/proc`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use podperf_testkit::{ChildGuard, NatsServer, RedisServer};
use serde::Serialize;

use crate::api;

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

/// nats-server + redis-server + the dispatcher, all stopped on drop.
pub struct Stack {
    pub nats: NatsServer,
    pub redis: RedisServer,
    pub dispatcher: ChildGuard,
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
        let nats = match &opts.nats_conf {
            Some(conf) => NatsServer::start_with_config(conf),
            None => NatsServer::start(),
        };
        let redis = RedisServer::start();
        let mut cmd = Command::new(bin("podperf-dispatcher")?);
        cmd.env("PODPERF_NATS_URL", nats.url())
            .env("PODPERF_REDIS_URL", redis.url())
            .env("PATH", orig_path())
            .env(
                "RUST_LOG",
                std::env::var("PODPERF_BENCH_DISPATCHER_LOG").unwrap_or_else(|_| "warn".into()),
            );
        for (k, v) in &opts.dispatcher_env {
            cmd.env(k, v);
        }
        let dispatcher = ChildGuard::spawn(cmd, "podperf-dispatcher");
        let stack = Stack {
            nats,
            redis,
            dispatcher,
        };
        let client = stack.client("bench-probe").await?;
        let until = Instant::now() + Duration::from_secs(20);
        while api::workers(&client).await.is_err() {
            if Instant::now() > until {
                bail!("the dispatcher did not answer: {}", stack.dispatcher.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(stack)
    }

    pub async fn client(&self, name: &str) -> anyhow::Result<async_nats::Client> {
        connect(&self.nats.url(), name).await
    }

    /// (pid, label) of the processes whose CPU and RSS the figures report.
    pub fn pids(&self) -> Vec<(u32, &'static str)> {
        vec![
            (self.nats.pid(), "nats-server"),
            (self.redis.pid(), "redis-server"),
            (self.dispatcher.pid(), "podperf-dispatcher"),
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

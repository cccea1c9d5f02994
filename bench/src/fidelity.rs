//! Figure 5 — fidelity: on the netns testbed (Flannel-VXLAN replica, `testbed/testbed.sh`), iperf3
//! TCP bandwidth, ping RTT and sockperf TCP latency p50 measured through podperf vs the same tool
//! run directly in the pod's namespace on the same path (same flags, same servers: the target
//! worker's own iperf3 and sockperf), interleaved, several repetitions; the ratio of the medians.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::process::Command;

use podperf_protocol::job::{LatencyParams, TransportProtocol};
use podperf_protocol::worker::DEFAULT_SOCKPERF_PORT;
use podperf_worker::probe::{sockperf, ProbeContext};

use crate::env::{bin_dir, orig_path};
use crate::report::Figure;
use crate::stats::median;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, default_value_t = 7)]
    pub reps: usize,
    /// iperf3 test length, seconds.
    #[arg(long, default_value_t = 3)]
    pub duration: u32,
    /// Echo requests per ping (0.2 s apart).
    #[arg(long, default_value_t = 20)]
    pub count: u32,
    /// sockperf ping-pong length (kind `latency`), seconds.
    #[arg(long, default_value_t = 2)]
    pub latency_duration: u32,
    /// Pin every worker (and the tools it runs) and every direct run to these CPUs (taskset
    /// syntax, `testbed.sh up --worker-cpus`): on a small machine whether sockperf's two ends share
    /// a CPU moves its latency by more than the path does. Default: unpinned.
    #[arg(long)]
    pub worker_cpus: Option<String>,
}

/// One worker of the testbed, from its `workers.tsv`.
#[derive(Debug, Clone)]
struct Tb {
    name: String,
    ns: String,
    ip: String,
    port: String,
}

fn testbed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testbed/testbed.sh")
}

async fn sh(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.env("PATH", orig_path()).output().await?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}{}",
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn run(opts: &Opts) -> anyhow::Result<Figure> {
    let mut fig = Figure::new(
        "fidelity",
        "5. Fidelity on the netns testbed: through podperf vs the tool run directly",
    );
    let check = Command::new(testbed())
        .arg("check")
        .env("PATH", orig_path())
        .status()
        .await?;
    if !check.success() {
        bail!("the testbed is not usable here (testbed.sh check: {check})");
    }
    let run_id = format!("b{:06x}", rand_u32() & 0xff_ffff);
    let mut up = Command::new(testbed());
    up.args([
        "up",
        "--nodes",
        "2",
        "--pods",
        "2",
        "--run-id",
        &run_id,
        "--bin-dir",
    ])
    .arg(bin_dir());
    if let Some(cpus) = &opts.worker_cpus {
        up.args(["--worker-cpus", cpus]);
        fig.note(format!(
            "workers, their tools and the direct runs pinned to CPUs {cpus} (`--worker-cpus {cpus}`)"
        ));
    }
    let up = sh(&mut up).await;
    let result = match up {
        Ok(out) => measure(&mut fig, opts, &run_id, &out).await,
        Err(e) => Err(e),
    };
    let _ = sh(Command::new(testbed()).args(["down", "--run-id", &run_id])).await;
    result?;
    Ok(fig.done())
}

async fn measure(fig: &mut Figure, opts: &Opts, run_id: &str, up: &str) -> anyhow::Result<()> {
    let state_dir = up
        .lines()
        .find_map(|l| l.strip_prefix("STATE_DIR="))
        .ok_or_else(|| anyhow!("no STATE_DIR in `up` output: {up}"))?;
    let tsv = std::fs::read_to_string(Path::new(state_dir).join("workers.tsv"))?;
    let workers: Vec<Tb> = tsv
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 8).then(|| Tb {
                name: f[0].into(),
                ns: f[2].into(),
                ip: f[4].into(),
                port: f[7].into(),
            })
        })
        .collect();
    let find = |n: &str| {
        workers
            .iter()
            .find(|w| w.name == n)
            .cloned()
            .ok_or_else(|| anyhow!("no {n} in the testbed"))
    };
    let mut data = Vec::new();
    for (label, from, to) in [
        ("pod ↔ pod, across nodes (VXLAN)", "pod-0-0", "pod-1-0"),
        ("pod ↔ pod, same node", "pod-0-0", "pod-0-1"),
    ] {
        let (src, dst) = (find(from)?, find(to)?);
        let (mut bw, mut rtt) = ((vec![], vec![]), (vec![], vec![]));
        let mut lat = (vec![], vec![]);
        for rep in 0..opts.reps {
            // Interleaved, the order alternating between repetitions.
            for first_podperf in [rep % 2 == 0, rep % 2 != 0] {
                if first_podperf {
                    bw.0.push(podperf_bw(run_id, &src, &dst, opts).await?);
                    rtt.0.push(podperf_rtt(run_id, &src, &dst, opts).await?);
                    lat.0.push(podperf_latency(run_id, &src, &dst, opts).await?);
                } else {
                    bw.1.push(direct_bw(&src, &dst, opts).await?);
                    rtt.1.push(direct_rtt(&src, &dst, opts).await?);
                    lat.1.push(direct_latency(&src, &dst, opts).await?);
                }
            }
        }
        let (lp, ld) = (median(&lat.0), median(&lat.1));
        fig.row(
            &format!(
                "{label}: sockperf TCP latency p50 ({} s, 64 B, full round trip), median of {} (podperf / direct)",
                opts.latency_duration, opts.reps
            ),
            format!(
                "{:.4} / {:.4} ms = {:.3} (ranges {} / {})",
                lp,
                ld,
                lp / ld,
                range(&lat.0, 1.0),
                range(&lat.1, 1.0)
            ),
            "ratio within 1 ± 0.03".into(),
            Some((lp / ld - 1.0).abs() <= 0.03),
        );
        let (bp, bd, rp, rd) = (median(&bw.0), median(&bw.1), median(&rtt.0), median(&rtt.1));
        let ok = |r: f64| Some((r - 1.0).abs() <= 0.03);
        fig.row(
            &format!(
                "{label}: iperf3 TCP {} s, median of {} (podperf / direct)",
                opts.duration, opts.reps
            ),
            format!(
                "{:.2} / {:.2} Gbit/s = {:.3} (ranges {} / {})",
                bp / 1e9,
                bd / 1e9,
                bp / bd,
                range(&bw.0, 1e-9),
                range(&bw.1, 1e-9)
            ),
            "ratio within 1 ± 0.03".into(),
            ok(bp / bd),
        );
        fig.row(
            &format!(
                "{label}: ping avg RTT ({} × 0.2 s), median of {} (podperf / direct)",
                opts.count, opts.reps
            ),
            format!(
                "{:.4} / {:.4} ms = {:.3} (ranges {} / {})",
                rp,
                rd,
                rp / rd,
                range(&rtt.0, 1.0),
                range(&rtt.1, 1.0)
            ),
            "ratio within 1 ± 0.03".into(),
            ok(rp / rd),
        );
        let paired = |a: &[f64], b: &[f64]| {
            let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
            median(&r)
        };
        fig.note(format!(
            "{label}: median of the per-repetition ratios (podperf run and direct run back to back): bandwidth {:.3}, RTT {:.3}, latency p50 {:.3}",
            paired(&bw.0, &bw.1),
            paired(&rtt.0, &rtt.1),
            paired(&lat.0, &lat.1)
        ));
        data.push(json!({ "path": label, "bw_podperf": bw.0, "bw_direct": bw.1, "rtt_podperf": rtt.0, "rtt_direct": rtt.1, "latency_p50_podperf": lat.0, "latency_p50_direct": lat.1 }));
    }
    fig.note("direct runs: `ip netns exec <pod ns> iperf3 -c <target pod IP> -p 5201 --json -t D -P 1 -B <source pod IP> --connect-timeout 3000` (the worker's argv, against the target worker's own `iperf3 -s`), `ip netns exec <pod ns> ping -n -4 -c N -i 0.2 -s 56 -W 2 -I <source IP> <target IP>` and `ip netns exec <pod ns> sockperf ping-pong -i <target IP> -p 11111 --tcp -t D -m 64 --full-rtt --client_ip <source IP>` (the worker's argv, against the target worker's own sockperf server); podperf runs: `testbed.sh exec -- podperf -o json run …` (its figures come from the worker's parsed result)");
    fig.data = json!(data);
    Ok(())
}

async fn podperf_job(run_id: &str, args: &[String]) -> anyhow::Result<Value> {
    let out = sh(Command::new(testbed())
        .args([
            "exec", "--run-id", run_id, "--", "podperf", "-o", "json", "run",
        ])
        .args(args))
    .await?;
    let v: Value = serde_json::from_str(&out).context("podperf's JSON")?;
    if v["state"] != "succeeded" {
        bail!("podperf job did not succeed: {v}");
    }
    Ok(v["result"].clone())
}

async fn podperf_bw(run_id: &str, s: &Tb, d: &Tb, o: &Opts) -> anyhow::Result<f64> {
    let args = [
        "iperf3",
        "--from",
        &s.name,
        "--to",
        &d.name,
        "--duration",
        &o.duration.to_string(),
    ]
    .map(String::from);
    let r = podperf_job(run_id, &args).await?;
    r["receiver_bits_per_second"]
        .as_f64()
        .ok_or_else(|| anyhow!("no receiver_bits_per_second in {r}"))
}

async fn podperf_rtt(run_id: &str, s: &Tb, d: &Tb, o: &Opts) -> anyhow::Result<f64> {
    let args = [
        "ping",
        "--from",
        &s.name,
        "--to",
        &d.name,
        "--count",
        &o.count.to_string(),
        "--interval",
        "0.2",
    ]
    .map(String::from);
    let r = podperf_job(run_id, &args).await?;
    r["rtt_avg_ms"]
        .as_f64()
        .ok_or_else(|| anyhow!("no rtt_avg_ms in {r}"))
}

/// `ip netns exec NS [taskset -c CPUS] TOOL`: a direct run in the source pod's namespace, pinned
/// as the workers are.
fn direct(ns: &str, o: &Opts, tool: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]);
    if let Some(cpus) = &o.worker_cpus {
        cmd.args(["taskset", "-c", cpus]);
    }
    cmd.arg(tool);
    cmd
}

async fn direct_bw(s: &Tb, d: &Tb, o: &Opts) -> anyhow::Result<f64> {
    let out = sh(direct(&s.ns, o, "iperf3").args([
        "-c",
        &d.ip,
        "-p",
        &d.port,
        "--json",
        "-t",
        &o.duration.to_string(),
        "-P",
        "1",
        "-B",
        &s.ip,
        "--connect-timeout",
        "3000",
    ]))
    .await?;
    let v: Value = serde_json::from_str(&out)?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or_else(|| anyhow!("no end.sum_received in iperf3's JSON"))
}

async fn direct_rtt(s: &Tb, d: &Tb, o: &Opts) -> anyhow::Result<f64> {
    let out = sh(direct(&s.ns, o, "ping").args([
        "-n",
        "-4",
        "-c",
        &o.count.to_string(),
        "-i",
        "0.2",
        "-s",
        "56",
        "-W",
        "2",
        "-I",
        &s.ip,
        &d.ip,
    ]))
    .await?;
    let line = out
        .lines()
        .find(|l| l.starts_with("rtt "))
        .ok_or_else(|| anyhow!("no rtt line: {out}"))?;
    let nums = line
        .split('=')
        .nth(1)
        .ok_or_else(|| anyhow!("bad rtt line"))?;
    nums.trim()
        .split('/')
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("bad rtt line {line}"))
}

fn latency_params(o: &Opts) -> LatencyParams {
    LatencyParams {
        protocol: TransportProtocol::Tcp,
        duration_s: o.latency_duration,
        message_size_bytes: 64,
    }
}

async fn podperf_latency(run_id: &str, s: &Tb, d: &Tb, o: &Opts) -> anyhow::Result<f64> {
    let args = [
        "latency",
        "--from",
        &s.name,
        "--to",
        &d.name,
        "--duration",
        &o.latency_duration.to_string(),
    ]
    .map(String::from);
    let r = podperf_job(run_id, &args).await?;
    r["rtt_p50_ms"]
        .as_f64()
        .ok_or_else(|| anyhow!("no rtt_p50_ms in {r}"))
}

/// sockperf with the worker's own argv (`probe::sockperf::argv`) and parser, run in the pod's
/// namespace against the target worker's sockperf server.
async fn direct_latency(s: &Tb, d: &Tb, o: &Opts) -> anyhow::Result<f64> {
    let params = latency_params(o);
    let ctx = ProbeContext {
        source_ip: Some(s.ip.parse()?),
        target_ip: d.ip.parse()?,
        target_port: DEFAULT_SOCKPERF_PORT,
    };
    let out = sh(direct(&s.ns, o, "sockperf").args(sockperf::argv(&params, &ctx))).await?;
    Ok(sockperf::parse(&out, &params)?.rtt_p50_ms)
}

fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

/// `min–max` of `v` scaled by `k`.
fn range(v: &[f64], k: f64) -> String {
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min) * k;
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max) * k;
    if k < 1.0 {
        format!("{min:.1}–{max:.1}")
    } else {
        format!("{min:.3}–{max:.3}")
    }
}

//! Figure 5 — fidelity: on the netns testbed (Flannel-VXLAN replica, `testbed/testbed.sh`), iperf3
//! TCP bandwidth and ping RTT measured through podperf vs the same tool run directly in the pod's
//! namespace on the same path (same flags, same iperf3 server: the target worker's own),
//! interleaved, several repetitions; the ratio of the medians.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::process::Command;

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
    let up = sh(Command::new(testbed())
        .args([
            "up",
            "--nodes",
            "2",
            "--pods",
            "2",
            "--run-id",
            &run_id,
            "--bin-dir",
        ])
        .arg(bin_dir()))
    .await;
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
        for rep in 0..opts.reps {
            // Interleaved, the order alternating between repetitions.
            for first_podperf in [rep % 2 == 0, rep % 2 != 0] {
                if first_podperf {
                    bw.0.push(podperf_bw(run_id, &src, &dst, opts).await?);
                    rtt.0.push(podperf_rtt(run_id, &src, &dst, opts).await?);
                } else {
                    bw.1.push(direct_bw(&src, &dst, opts).await?);
                    rtt.1.push(direct_rtt(&src, &dst, opts).await?);
                }
            }
        }
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
            "{label}: median of the per-repetition ratios (podperf run and direct run back to back): bandwidth {:.3}, RTT {:.3}",
            paired(&bw.0, &bw.1),
            paired(&rtt.0, &rtt.1)
        ));
        data.push(json!({ "path": label, "bw_podperf": bw.0, "bw_direct": bw.1, "rtt_podperf": rtt.0, "rtt_direct": rtt.1 }));
    }
    fig.note("direct runs: `ip netns exec <pod ns> iperf3 -c <target pod IP> -p 5201 --json -t D -P 1 -B <source pod IP> --connect-timeout 3000` (the worker's argv, against the target worker's own `iperf3 -s`) and `ip netns exec <pod ns> ping -n -4 -c N -i 0.2 -s 56 -W 2 -I <source IP> <target IP>`; podperf runs: `testbed.sh exec -- podperf -o json run …` (its figures come from the worker's parsed result)");
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

async fn direct_bw(s: &Tb, d: &Tb, o: &Opts) -> anyhow::Result<f64> {
    let out = sh(Command::new("ip").args([
        "netns",
        "exec",
        &s.ns,
        "iperf3",
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
    let out = sh(Command::new("ip").args([
        "netns",
        "exec",
        &s.ns,
        "ping",
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

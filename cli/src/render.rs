//! Human-readable output: one-line summaries of results and the tables.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use podperf_protocol::api::JobRecord;
use podperf_protocol::job::Target;
use podperf_protocol::outcome::JobState;
use podperf_protocol::result::{Iperf3Result, PingResult, ProbeResult, TracerouteResult};
use podperf_protocol::worker::WorkerView;

/// `21.3 Gbit/s`, `940 Mbit/s`, `1.05 Mbit/s` — bits, SI prefixes, three significant digits.
pub fn bitrate(bits_per_second: f64) -> String {
    let (scale, unit) = bit_unit(bits_per_second);
    let v = bits_per_second / scale;
    format!("{v:.0$} {unit}", sig3_decimals(v))
}

/// The SI scale and unit a bitrate reads best in.
pub fn bit_unit(bits_per_second: f64) -> (f64, &'static str) {
    [(1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")]
        .into_iter()
        .find(|(s, _)| bits_per_second >= *s)
        .unwrap_or((1.0, "bit/s"))
}

/// Decimals that show `v` with three significant digits (for v ≥ 1).
pub fn sig3_decimals(v: f64) -> usize {
    if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    }
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

pub fn ping(p: &PingResult) -> String {
    let loss = format!(
        "{}% loss ({}/{} received)",
        trim(p.loss_percent),
        p.received,
        p.transmitted
    );
    match p.rtt_avg_ms {
        Some(avg) => format!(
            "rtt avg {avg:.3} ms (min {} max {} mdev {}), {loss}",
            ms(p.rtt_min_ms),
            ms(p.rtt_max_ms),
            ms(p.rtt_mdev_ms)
        ),
        None => loss,
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

pub fn traceroute(t: &TracerouteResult) -> String {
    let n = t.hop_count();
    let hops: Vec<String> = t.hops.iter().take(n).map(hop).collect();
    let verb = if t.reached {
        "reached"
    } else {
        "did not reach"
    };
    let plural = if n == 1 { "" } else { "s" };
    format!(
        "{verb} {} in {n} hop{plural}: {}",
        t.target,
        hops.join(" → ")
    )
}

fn hop(h: &podperf_protocol::result::TracerouteHop) -> String {
    let addr = h.probes.iter().find_map(|p| p.address);
    let rtts: Vec<f64> = h.probes.iter().filter_map(|p| p.rtt_ms).collect();
    match addr {
        Some(a) if !rtts.is_empty() => {
            let best = rtts.iter().cloned().fold(f64::INFINITY, f64::min);
            format!("{a} ({best:.3} ms)")
        }
        Some(a) => a.to_string(),
        None => "*".into(),
    }
}

pub fn iperf3(r: &Iperf3Result) -> String {
    use podperf_protocol::job::TransportProtocol;
    let rate = bitrate(r.receiver_bits_per_second);
    match r.protocol {
        TransportProtocol::Tcp => {
            let retr = r
                .retransmits
                .map(|n| format!(", {n} retransmits"))
                .unwrap_or_default();
            format!(
                "{rate}{retr} ({} stream(s), {:.1} s)",
                r.streams, r.duration_s
            )
        }
        TransportProtocol::Udp => format!(
            "{rate}, jitter {} ms, {}/{} datagrams lost ({}%)",
            ms(r.jitter_ms),
            r.lost_packets.unwrap_or(0),
            r.packets.unwrap_or(0),
            r.lost_percent.map(trim).unwrap_or_else(|| "-".into())
        ),
    }
}

pub fn result(r: &ProbeResult) -> String {
    match r {
        ProbeResult::Ping(p) => ping(p),
        ProbeResult::Traceroute(t) => traceroute(t),
        ProbeResult::Iperf3(i) => iperf3(i),
        ProbeResult::Noop(n) => format!("noop (slept {} ms)", n.slept_ms),
        ProbeResult::Sweep(s) => sweep(s),
        ProbeResult::Latency(l) => latency(l),
        ProbeResult::Mtu(m) => mtu(m),
    }
}

/// `sweep: 3/4 targets answered, rtt avg 0.052–0.131 ms`.
fn sweep(s: &podperf_protocol::sweep::SweepResult) -> String {
    let answered = s.targets.iter().filter(|t| t.received > 0).count();
    let rtts: Vec<f64> = s.targets.iter().filter_map(|t| t.rtt_avg_ms).collect();
    let lo = rtts.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rtts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = if rtts.is_empty() {
        String::new()
    } else {
        format!(", rtt avg {}–{} ms", trim(lo), trim(hi))
    };
    format!(
        "sweep: {answered}/{} targets answered{range}",
        s.targets.len()
    )
}

/// `latency (tcp, full round trip) p50 0.012 ms, p90 …, 81234 transactions/s (120000 observations)`.
fn latency(r: &podperf_protocol::result::LatencyResult) -> String {
    let proto = match r.protocol {
        podperf_protocol::job::TransportProtocol::Tcp => "tcp",
        podperf_protocol::job::TransportProtocol::Udp => "udp",
    };
    format!(
        "round trip ({proto}, {} B): p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, \
         min {:.3} / avg {:.3} / max {:.3} ms; {:.0} transactions/s ({} observations)",
        r.message_size_bytes,
        r.rtt_p50_ms,
        r.rtt_p90_ms,
        r.rtt_p99_ms,
        r.rtt_p99_9_ms,
        r.rtt_min_ms,
        r.rtt_avg_ms,
        r.rtt_max_ms,
        r.transactions_per_second,
        r.observations
    )
}

/// `path MTU 1400 (drops to 1400 at hop 2, 10.98.1.1); DF ping at 1400: 3/3 passed`.
fn mtu(r: &podperf_protocol::result::MtuResult) -> String {
    let mut s = format!("path MTU {}", r.path_mtu_bytes);
    for d in &r.drops {
        let at = d.address.map(|a| format!(", {a}")).unwrap_or_default();
        s.push_str(&format!(" (drops to {} at hop {}{at})", d.mtu_bytes, d.ttl));
    }
    if let Some(p) = &r.df_ping {
        s.push_str(&format!(
            "; DF ping at {}: {}/{} passed",
            p.packet_bytes, p.received, p.transmitted
        ));
    }
    if r.black_hole {
        s.push_str(" — MTU BLACK HOLE: full-size packets with DF set are lost");
    }
    s
}

/// One line about a job's outcome: the result, or the state with its reason.
pub fn outcome(rec: &JobRecord) -> String {
    match (&rec.state, &rec.result) {
        (JobState::Succeeded, Some(r)) => result(r),
        (state, r) => {
            let mut s = state.to_string();
            if let Some(reason) = rec.reason {
                s.push_str(&format!(
                    " ({})",
                    serde_json::to_value(reason).unwrap().as_str().unwrap_or("")
                ));
            }
            if let Some(m) = &rec.message {
                s.push_str(&format!(": {m}"));
            }
            if let (true, Some(r)) = (state.is_terminal(), r) {
                s.push_str(&format!(" — {}", result(r)));
            }
            s
        }
    }
}

/// The job's header line, e.g. `ping podperf-a → podperf-b (127.0.0.3)`.
pub fn job_line(rec: &JobRecord, name: impl Fn(&str) -> String) -> String {
    let target = match (&rec.target, &rec.target_worker) {
        (_, Some(w)) => name(w),
        (Some(Target::Address(a)), None) => a.to_string(),
        _ => String::new(),
    };
    let ip = rec
        .target_ip
        .map(|ip| format!(" ({ip})"))
        .unwrap_or_default();
    let arrow = if target.is_empty() {
        String::new()
    } else {
        format!(" → {target}{ip}")
    };
    format!(
        "{} {}{}",
        rec.params.kind(),
        name(&rec.source_worker),
        arrow
    )
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(header.iter().copied());
    t
}

pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// `0.4 s ago`, from two epoch-ms instants.
pub fn ago(then_ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) as f64 / 1000.0;
    format!("{s:.1} s ago")
}

pub fn workers(ws: &[WorkerView], now_ms: u64) -> String {
    let mut t = table(&[
        "WORKER",
        "POD",
        "NODE",
        "POD IP",
        "NODE IP",
        "HOST-NET",
        "TOOLS",
        "LAST SEEN",
    ]);
    for w in ws {
        let i = &w.info;
        let tools: Vec<String> = i
            .tools
            .iter()
            .map(|t| match (&t.available, &t.version) {
                (true, Some(v)) => format!("{} {v}", t.tool.program()),
                (true, None) => t.tool.program().to_string(),
                (false, _) => format!("{} (missing)", t.tool.program()),
            })
            .collect();
        t.add_row(vec![
            short_id(&i.worker_id),
            i.pod_name.clone(),
            i.node_name.clone(),
            i.pod_ip.to_string(),
            i.node_ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "-".into()),
            if i.host_network { "yes" } else { "no" }.to_string(),
            tools.join(", "),
            ago(w.last_seen_at_ms, now_ms),
        ]);
    }
    t.to_string()
}

pub fn jobs(rs: &[JobRecord], name: impl Fn(&str) -> String) -> String {
    let mut t = table(&["JOB", "KIND", "FROM", "TO", "STATE", "CREATED", "OUTCOME"]);
    for r in rs {
        let to = r
            .target_worker
            .as_deref()
            .map(&name)
            .or_else(|| r.target_ip.map(|ip| ip.to_string()))
            .unwrap_or_else(|| "-".into());
        let created = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.created_at_ms),
        );
        t.add_row(vec![
            r.job_id.to_string(),
            r.params.kind().to_string(),
            name(&r.source_worker),
            to,
            r.state.to_string(),
            created.to_string(),
            outcome(r),
        ]);
    }
    t.to_string()
}

pub fn runs(rs: &[podperf_protocol::run::RunProgress]) -> String {
    let mut t = table(&[
        "RUN",
        "CREATED",
        "PAIRS",
        "ROUNDS",
        "JOBS",
        "DONE",
        "SUCCEEDED",
        "SCHEDULE",
    ]);
    for r in rs {
        let created = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.created_at_ms),
        );
        t.add_row(vec![
            r.run_id.to_string(),
            created.to_string(),
            r.pairs.to_string(),
            r.rounds.to_string(),
            r.jobs.to_string(),
            r.jobs_done.to_string(),
            r.jobs_succeeded.to_string(),
            r.schedule.clone().unwrap_or_default(),
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_use_bits_and_si_prefixes() {
        assert_eq!(bitrate(21_300_000_000.0), "21.3 Gbit/s");
        assert_eq!(bitrate(940_000_000.0), "940 Mbit/s");
        assert_eq!(bitrate(1_048_576.0), "1.05 Mbit/s");
        assert_eq!(bitrate(12.0), "12.0 bit/s");
    }

    #[test]
    fn time_ago() {
        assert_eq!(ago(1_000, 1_400), "0.4 s ago");
        assert_eq!(ago(2_000, 1_000), "0.0 s ago");
    }
}

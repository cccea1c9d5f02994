//! The matrix report's cells and footer, shared by the table and Markdown: a median with its
//! spread and the 95 % confidence interval of the mean, in the unit the median reads best in;
//! the footer's overlay cost, sampling and gate verdict.

use podperf_protocol::run::{
    ClassReport, Figures, RunReport, SamplingState, Spread, VerdictStatus, CONVERGED_HALF_WIDTH,
    TRUST_SPREAD,
};

use crate::render::{bit_unit, sig3_decimals};

/// `median unit (min–max) ±h %`, with ` ~` when the spread is too wide to trust; `±h %` is the
/// half-width of the mean's 95 % confidence interval as a share of the mean. `unit` picks the
/// scale, unit and decimals from the median, so the range reads in the same unit.
pub fn cell(s: &Option<Spread>, unit: fn(f64) -> (f64, &'static str, usize)) -> String {
    let Some(s) = s else { return "-".into() };
    let (scale, name, decimals) = unit(s.median);
    let v = |x: f64| format!("{:.decimals$}", x / scale);
    if s.samples == 1 {
        return format!("{} {name}", v(s.median));
    }
    let ci = s
        .ci95_relative()
        .map(|r| format!(" ±{}", pct(r * 100.0)))
        .unwrap_or_default();
    let mark = if s.wide { " ~" } else { "" };
    format!(
        "{} {name} ({}–{}){ci}{mark}",
        v(s.median),
        v(s.min),
        v(s.max)
    )
}

pub fn ms(_: f64) -> (f64, &'static str, usize) {
    (1.0, "ms", 3)
}

pub fn bits(median: f64) -> (f64, &'static str, usize) {
    let (scale, unit) = bit_unit(median);
    (scale, unit, sig3_decimals(median / scale))
}

fn pct(v: f64) -> String {
    let s = format!("{v:.1}");
    format!("{} %", s.strip_suffix(".0").unwrap_or(&s))
}

/// The worst loss seen: one lossy sample is worth seeing.
pub fn loss(f: &Figures) -> String {
    f.loss_percent
        .as_ref()
        .map(|s| pct(s.max))
        .unwrap_or("-".into())
}

pub fn hops(f: &Figures) -> String {
    f.hops.map(|h| h.to_string()).unwrap_or("-".into())
}

/// The class table's header; the UDP columns only when the run measured UDP.
pub fn header(r: &RunReport) -> Vec<&'static str> {
    let mut h = vec![
        "PATH",
        "PAIRS",
        "TCP BANDWIDTH",
        "RETRANSMITS",
        "RTT AVG",
        "LOSS",
        "HOPS",
    ];
    if r.request.udp {
        h.extend(["UDP JITTER", "UDP LOSS"]);
    }
    if r.request.latency {
        h.push("LATENCY p50 / p99");
        if r.request.udp {
            h.push("UDP LATENCY p50 / p99");
        }
    }
    if r.request.mtu {
        h.push("PATH MTU");
    }
    h
}

/// `p50 / p99 ms` (full round trips; the medians over the samples), ` ~` when either is too
/// noisy to trust.
pub fn latency(p50: &Option<Spread>, p99: &Option<Spread>) -> String {
    match (p50, p99) {
        (Some(a), Some(b)) => {
            let mark = if a.wide || b.wide { " ~" } else { "" };
            // Microseconds matter here: three significant digits of the p50, for both.
            let d = if a.median > 0.0 && a.median < 1.0 {
                ((-a.median.log10()).floor() as usize + 3).min(6)
            } else {
                3
            };
            format!("{:.d$} / {:.d$} ms{mark}", a.median, b.median)
        }
        _ => "-".into(),
    }
}

/// The path MTU in bytes, flagged when full-size DF packets were lost.
pub fn path_mtu(f: &Figures) -> String {
    match (f.path_mtu_bytes, f.mtu_black_hole) {
        (Some(m), true) => format!("{m} BLACK HOLE"),
        (Some(m), false) => m.to_string(),
        (None, _) => "-".into(),
    }
}

/// The row's path class, with its family unless the run measured IPv4 only.
pub fn row_label(r: &RunReport, c: &ClassReport) -> String {
    match r.request.family {
        podperf_protocol::run::MatrixFamily::Ipv4 => c.class.label().to_string(),
        _ => format!("{} ({})", c.class.label(), family_name(c.family)),
    }
}

/// `IPv4` or `IPv6`.
pub fn family_name(f: podperf_protocol::job::IpFamily) -> &'static str {
    match f {
        podperf_protocol::job::IpFamily::Ipv4 => "IPv4",
        podperf_protocol::job::IpFamily::Ipv6 => "IPv6",
    }
}

pub fn class_row(r: &RunReport, c: &ClassReport) -> Vec<String> {
    let f = &c.figures;
    let mut row = vec![
        row_label(r, c),
        c.pairs.to_string(),
        cell(&f.tcp_bits_per_second, bits),
        f.tcp_retransmits
            .as_ref()
            .map(|s| format!("{:.0}", s.median))
            .unwrap_or("-".into()),
        cell(&f.rtt_avg_ms, ms),
        loss(f),
        hops(f),
    ];
    if r.request.udp {
        row.push(cell(&f.udp_jitter_ms, ms));
        row.push(
            f.udp_lost_percent
                .as_ref()
                .map(|s| pct(s.median))
                .unwrap_or("-".into()),
        );
    }
    if r.request.latency {
        row.push(latency(&f.latency_p50_ms, &f.latency_p99_ms));
        if r.request.udp {
            row.push(latency(&f.udp_latency_p50_ms, &f.udp_latency_p99_ms));
        }
    }
    if r.request.mtu {
        row.push(path_mtu(f));
    }
    if f.jobs_failed > 0 {
        row[0] = format!("{} ({} failed)", row[0], f.jobs_failed);
    }
    row
}

/// The overlay cost line and the run's summary.
pub fn footer(r: &RunReport) -> String {
    let mut out = String::new();
    if let Some(c) = &r.overlay_cost {
        let mut parts = Vec::new();
        if let Some(b) = c.bandwidth_ratio {
            parts.push(format!("bandwidth {b:.2}× ({:+.0} %)", (b - 1.0) * 100.0));
        }
        if let Some(t) = c.rtt_ratio {
            parts.push(format!("RTT {t:.2}× ({:+.0} %)", (t - 1.0) * 100.0));
        }
        if !parts.is_empty() {
            out += &format!(
                "overlay cost (pod across nodes vs node ↔ node): {}\n",
                parts.join(", ")
            );
        }
    }
    for m in &r.mtu_problems {
        out += &format!("MTU PROBLEM ({}): {}\n", m.kind, m.message);
    }
    out += &sampling(r);
    out += &verdict(r);
    let p = &r.progress;
    let samples = if r.request.samples_auto {
        format!(
            "{}–{} samples (auto)",
            r.request.samples, r.request.samples_auto_max
        )
    } else {
        format!("{} samples", r.request.samples)
    };
    out += &format!(
        "run {}: {} pairs in {} rounds, {samples} each; {}/{} jobs succeeded",
        p.run_id, p.pairs, p.rounds, p.jobs_succeeded, p.jobs
    );
    let with_ci = r.classes.iter().any(|c| {
        [&c.figures.tcp_bits_per_second, &c.figures.rtt_avg_ms]
            .iter()
            .any(|s| s.as_ref().is_some_and(|s| s.ci95_low.is_some()))
    });
    if with_ci {
        out += "\n± half-width of the 95 % confidence interval of the mean (Student's t), as a share of the mean";
    }
    let wide = r.classes.iter().any(|c| {
        [&c.figures.tcp_bits_per_second, &c.figures.rtt_avg_ms]
            .iter()
            .any(|s| s.as_ref().is_some_and(|s| s.wide))
    });
    if wide {
        out += &format!(
            "\n~ spread (max − min) above {:.0} % of the median: too noisy to trust; try more --samples (or --samples auto)",
            TRUST_SPREAD * 100.0
        );
    }
    out
}

fn state(s: SamplingState) -> &'static str {
    match s {
        SamplingState::Sampling => "sampling",
        SamplingState::Converged => "converged",
        SamplingState::BoundReached => "bound reached",
        SamplingState::Stopped => "stopped",
    }
}

/// `--samples auto`: each row's outcome and its sample count (of TCP bandwidth, else RTT).
fn sampling(r: &RunReport) -> String {
    let Some(run) = r.sampling else {
        return String::new();
    };
    let rows: Vec<String> = r
        .classes
        .iter()
        .filter_map(|c| {
            let n = c.figures.sampled().map(|s| s.samples).max().unwrap_or(0);
            Some(format!("{} {} ({n})", c.class.label(), state(c.sampling?)))
        })
        .collect();
    format!(
        "samples auto (until ±{:.0} %, at most {}): {}; {}\n",
        CONVERGED_HALF_WIDTH * 100.0,
        r.request.samples_auto_max,
        state(run),
        rows.join(", ")
    )
}

/// The gate's verdict and each check.
fn verdict(r: &RunReport) -> String {
    let Some(v) = &r.verdict else {
        return String::new();
    };
    let word = |s: VerdictStatus| match s {
        VerdictStatus::Pass => "PASS",
        VerdictStatus::Fail => "FAIL",
    };
    let mut out = format!("VERDICT: {}\n", word(v.status));
    for c in &v.checks {
        out += &format!("  {} {}: {}\n", word(c.status), c.check, c.message);
    }
    out
}

/// A run report parsed from the fixture, for the formats' snapshot tests.
#[cfg(test)]
pub fn sample_report() -> RunReport {
    serde_json::from_str(include_str!("../../tests/fixtures/run_report.json")).unwrap()
}

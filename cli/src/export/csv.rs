//! `-o csv`: the matrix report's classes, one row each, raw numbers in the units the field names
//! carry (for spreadsheets). Other replies print as the table. The columns added later come
//! last, so scripts reading the first ones by position keep working; `sampling` and `verdict`
//! (the run's, on every row) are empty when the run had no `--samples auto` or no gate.

use podperf_protocol::run::{RunReport, SamplingState, Spread, VerdictStatus};

use super::Exporter;

pub struct Csv;

impl Exporter for Csv {
    fn run_report(&self, r: &RunReport, _pairs: bool) -> String {
        csv(r)
    }
}

fn opt(s: &Option<Spread>, f: impl Fn(&Spread) -> f64) -> String {
    s.as_ref().map(|s| format!("{}", f(s))).unwrap_or_default()
}

/// A field that may be missing from a spread (an interval needs two samples).
fn opt_of(s: &Option<Spread>, f: impl Fn(&Spread) -> Option<f64>) -> String {
    s.as_ref()
        .and_then(f)
        .map(|v| format!("{v}"))
        .unwrap_or_default()
}

fn sampling(s: SamplingState) -> &'static str {
    match s {
        SamplingState::Sampling => "sampling",
        SamplingState::Converged => "converged",
        SamplingState::BoundReached => "bound_reached",
        SamplingState::Stopped => "stopped",
    }
}

pub fn csv(r: &RunReport) -> String {
    let mut out = String::from(
        "path,pairs,tcp_bits_per_second,tcp_bits_per_second_min,tcp_bits_per_second_max,\
         tcp_retransmits,rtt_avg_ms,rtt_avg_ms_min,rtt_avg_ms_max,loss_percent,hops,\
         udp_jitter_ms,udp_lost_percent,jobs_failed,latency_p50_ms,latency_p99_ms,\
         udp_latency_p50_ms,udp_latency_p99_ms,path_mtu_bytes,mtu_black_hole,\
         tcp_bits_per_second_mean,tcp_bits_per_second_ci95_low,tcp_bits_per_second_ci95_high,\
         tcp_bits_per_second_samples,rtt_avg_ms_mean,rtt_avg_ms_ci95_low,rtt_avg_ms_ci95_high,\
         rtt_avg_ms_samples,latency_p50_ms_ci95_low,latency_p50_ms_ci95_high,family,sampling,verdict\n",
    );
    let verdict = match r.verdict.as_ref().map(|v| v.status) {
        Some(VerdictStatus::Pass) => "pass",
        Some(VerdictStatus::Fail) => "fail",
        None => "",
    };
    for c in &r.classes {
        let f = &c.figures;
        let class = serde_json::to_value(c.class).expect("class serialises");
        let fields = [
            class.as_str().unwrap_or_default().to_string(),
            c.pairs.to_string(),
            opt(&f.tcp_bits_per_second, |s| s.median),
            opt(&f.tcp_bits_per_second, |s| s.min),
            opt(&f.tcp_bits_per_second, |s| s.max),
            opt(&f.tcp_retransmits, |s| s.median),
            opt(&f.rtt_avg_ms, |s| s.median),
            opt(&f.rtt_avg_ms, |s| s.min),
            opt(&f.rtt_avg_ms, |s| s.max),
            opt(&f.loss_percent, |s| s.max),
            f.hops.map(|h| h.to_string()).unwrap_or_default(),
            opt(&f.udp_jitter_ms, |s| s.median),
            opt(&f.udp_lost_percent, |s| s.median),
            f.jobs_failed.to_string(),
            opt(&f.latency_p50_ms, |s| s.median),
            opt(&f.latency_p99_ms, |s| s.median),
            opt(&f.udp_latency_p50_ms, |s| s.median),
            opt(&f.udp_latency_p99_ms, |s| s.median),
            f.path_mtu_bytes.map(|m| m.to_string()).unwrap_or_default(),
            f.mtu_black_hole.to_string(),
            opt_of(&f.tcp_bits_per_second, |s| s.mean),
            opt_of(&f.tcp_bits_per_second, |s| s.ci95_low),
            opt_of(&f.tcp_bits_per_second, |s| s.ci95_high),
            opt(&f.tcp_bits_per_second, |s| f64::from(s.samples)),
            opt_of(&f.rtt_avg_ms, |s| s.mean),
            opt_of(&f.rtt_avg_ms, |s| s.ci95_low),
            opt_of(&f.rtt_avg_ms, |s| s.ci95_high),
            opt(&f.rtt_avg_ms, |s| f64::from(s.samples)),
            opt_of(&f.latency_p50_ms, |s| s.ci95_low),
            opt_of(&f.latency_p50_ms, |s| s.ci95_high),
            c.family.to_string(),
            c.sampling.map(sampling).unwrap_or_default().to_string(),
            verdict.to_string(),
        ];
        out += &fields.join(",");
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::cells::sample_report;
    use super::*;

    #[test]
    fn csv_snapshot() {
        insta::assert_snapshot!(csv(&sample_report()));
    }
}

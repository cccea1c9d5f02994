//! `-o csv`: the matrix report's classes, one row each, raw numbers in the units the field names
//! carry (for spreadsheets). Other replies print as the table.

use podperf_protocol::run::{RunReport, Spread};

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

pub fn csv(r: &RunReport) -> String {
    let mut out = String::from(
        "path,pairs,tcp_bits_per_second,tcp_bits_per_second_min,tcp_bits_per_second_max,\
         tcp_retransmits,rtt_avg_ms,rtt_avg_ms_min,rtt_avg_ms_max,loss_percent,hops,\
         udp_jitter_ms,udp_lost_percent,jobs_failed,latency_p50_ms,latency_p99_ms,\
         udp_latency_p50_ms,udp_latency_p99_ms,path_mtu_bytes,mtu_black_hole\n",
    );
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

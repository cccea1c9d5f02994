//! `-o table`: tables and one-line summaries for people (the default).

use podperf_client::Live;
use podperf_protocol::api::{JobRecord, ListJobsReply, ListWorkersReply, SubmitReply};
use podperf_protocol::run::{ListRunsReply, RunReport};

use super::cells::{bits, cell, class_row, footer, header, hops, loss, ms};
use super::{Exporter, Names};
use crate::render;

pub struct Table;

impl Exporter for Table {
    fn run_report(&self, r: &RunReport, pairs: bool) -> String {
        let mut out = format!("{}\n", class_table(r));
        if pairs {
            out += &format!("{}\n", pair_table(r));
        }
        out + &format!("{}\n", footer(r))
    }

    fn workers(&self, reply: &ListWorkersReply, now_ms: u64) -> String {
        if reply.workers.is_empty() {
            return "no live workers\n".into();
        }
        format!("{}\n", render::workers(&reply.workers, now_ms))
    }

    fn job(&self, rec: &JobRecord, names: &Names) -> String {
        let took = match (rec.started_at_ms, rec.finished_at_ms) {
            (Some(s), Some(f)) if f.saturating_sub(s) < 1000 => {
                format!(" in {} ms", f.saturating_sub(s))
            }
            (Some(s), Some(f)) => format!(" in {:.2} s", f.saturating_sub(s) as f64 / 1000.0),
            _ => String::new(),
        };
        format!(
            "job {}  {}  {}{took}\n  {}\n",
            rec.job_id,
            render::job_line(rec, |id| names.name(id)),
            rec.state,
            render::outcome(rec)
        )
    }

    fn jobs(&self, reply: &ListJobsReply, names: &Names) -> String {
        format!("{}\n", render::jobs(&reply.jobs, |id| names.name(id)))
    }

    fn submitted(&self, reply: &SubmitReply) -> String {
        reply.job_ids.iter().map(|id| format!("{id}\n")).collect()
    }

    fn runs(&self, reply: &ListRunsReply) -> String {
        format!("{}\n", render::runs(&reply.runs))
    }

    fn live(&self, item: &Live) -> Option<String> {
        match item {
            Live::Event(ev) => Some(format!(
                "{} {:?} on {}\n",
                ev.job_id,
                ev.event,
                render::short_id(&ev.worker_id)
            )),
            Live::Result(o) => {
                let what = o.result.as_ref().map(render::result).unwrap_or_default();
                let why = o.message.clone().unwrap_or_default();
                Some(format!("{} {:?} {what}{why}\n", o.job_id, o.status))
            }
            Live::Malformed { .. } => None,
        }
    }
}

/// The comparison table: one row per path class.
pub fn class_table(r: &RunReport) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(header(r));
    for c in &r.classes {
        t.add_row(class_row(r, c));
    }
    t.to_string()
}

/// One row per measured pair (`--pairs`).
fn pair_table(r: &RunReport) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "FROM",
        "TO",
        "PATH",
        "TCP BANDWIDTH",
        "RTT AVG",
        "LOSS",
        "HOPS",
    ]);
    for p in &r.pairs {
        let f = &p.figures;
        t.add_row(vec![
            format!("{} ({})", p.source_pod, p.source_node),
            format!("{} ({})", p.target_pod, p.target_node),
            p.class.label().to_string(),
            cell(&f.tcp_bits_per_second, bits),
            cell(&f.rtt_avg_ms, ms),
            loss(f),
            hops(f),
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::cells::sample_report;
    use super::*;

    #[test]
    fn table_snapshot() {
        let r = sample_report();
        insta::assert_snapshot!(format!("{}\n{}", class_table(&r), footer(&r)));
    }

    #[test]
    fn latency_and_path_mtu_columns_and_the_mtu_problem() {
        use podperf_protocol::run::{MtuProblem, Spread};
        let mut r = sample_report();
        let s = |median| {
            Some(Spread {
                median,
                min: median,
                max: median,
                samples: 1,
                wide: false,
                mean: Some(median),
                ci95_low: None,
                ci95_high: None,
            })
        };
        let f = &mut r.classes[1].figures;
        (f.latency_p50_ms, f.latency_p99_ms) = (s(0.0421), s(0.1));
        (f.path_mtu_bytes, f.mtu_black_hole) = (Some(1500), true);
        r.mtu_problems.push(MtuProblem {
            kind: "pod_mtu_exceeds_underlay".into(),
            message: "pod MTU 1500 > node path MTU 1500 − 50".into(),
            pod_path_mtu_bytes: Some(1500),
            node_path_mtu_bytes: Some(1500),
        });
        let text = Table.run_report(&r, false);
        assert!(
            text.contains("LATENCY p50 / p99") && text.contains("PATH MTU"),
            "{text}"
        );
        assert!(
            text.contains("0.0421 / 0.1000 ms") && text.contains("1500 BLACK HOLE"),
            "{text}"
        );
        assert!(text.contains("MTU PROBLEM (pod_mtu_exceeds_underlay): pod MTU 1500"));
        r.request.latency = false;
        r.request.mtu = false;
        let text = Table.run_report(&r, false);
        assert!(
            !text.contains("LATENCY") && !text.contains("PATH MTU"),
            "{text}"
        );
    }

    #[test]
    fn the_report_is_the_class_table_then_the_footer() {
        let r = sample_report();
        let expect = format!("{}\n{}\n", class_table(&r), footer(&r));
        assert_eq!(Table.run_report(&r, false), expect);
        let with_pairs = Table.run_report(&r, true);
        assert!(with_pairs.starts_with(&format!("{}\n", class_table(&r))));
        assert!(with_pairs.contains("FROM") && with_pairs.ends_with(&format!("{}\n", footer(&r))));
    }

    #[test]
    fn the_confidence_interval_the_sampling_and_the_verdict() {
        use podperf_protocol::run::{GateCheck, SamplingState, Verdict, VerdictStatus};
        let mut r = sample_report();
        r.request.samples_auto = true;
        let f = &mut r.classes[1].figures;
        f.tcp_bits_per_second = podperf_report::spread(&[9.0e9, 9.4e9, 9.5e9, 9.6e9]);
        r.classes[1].sampling = Some(SamplingState::Converged);
        r.classes[0].sampling = Some(SamplingState::BoundReached);
        r.classes[2].sampling = Some(SamplingState::Converged);
        r.sampling = Some(SamplingState::BoundReached);
        r.verdict = Some(Verdict {
            status: VerdictStatus::Fail,
            checks: vec![GateCheck {
                check: "max_rtt_ratio".into(),
                status: VerdictStatus::Fail,
                limit: 0.0001,
                measured: Some(1.9),
                message: "pod ↔ pod across nodes RTT is 1.90× node ↔ node (at most 0.0001×)".into(),
            }],
        });
        let text = Table.run_report(&r, false);
        // mean 9.375, s 0.263: t(3) 3.182 × 0.1315 = 0.418 → ±4.5 %.
        assert!(text.contains("9.45 Gbit/s (9.00–9.60) ±4.5 %"), "{text}");
        assert!(
            text.contains("samples auto (until ±5 %, at most 20): bound reached;"),
            "{text}"
        );
        assert!(
            text.contains("pod ↔ pod, across nodes converged (4)"),
            "{text}"
        );
        assert!(
            text.contains("VERDICT: FAIL\n  FAIL max_rtt_ratio: pod ↔ pod"),
            "{text}"
        );
        assert!(text.contains("2–20 samples (auto) each"), "{text}");
        assert!(
            text.contains("± half-width of the 95 % confidence interval"),
            "{text}"
        );
        let csv = super::super::csv::csv(&r);
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let row: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
        let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!((col("sampling"), col("verdict")), ("converged", "fail"));
        assert_eq!(col("tcp_bits_per_second_samples"), "4");
        let low: f64 = col("tcp_bits_per_second_ci95_low").parse().unwrap();
        assert!((low - 8.957e9).abs() < 1e7, "{low}");
        let md = super::super::markdown::markdown(&r);
        assert!(md.contains("VERDICT: FAIL"), "{md}");
    }
}

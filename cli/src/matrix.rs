//! `podperf matrix` and `podperf runs`: start a run, show its progress, render its report as a
//! table (the paper's table, with spreads and the overlay cost), CSV or Markdown.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::bail;
use futures::StreamExt;
use podperf_protocol::names::{endpoint, DONE_PREFIX};
use podperf_protocol::run::*;
use uuid::Uuid;

use crate::client::Api;
use crate::render::{bit_unit, sig3_decimals};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

/// Starts a run and, unless `no_wait`, follows it to the end; returns the report.
pub async fn run(
    api: &Api,
    req: MatrixRequest,
    no_wait: bool,
    quiet: bool,
) -> anyhow::Result<RunReport> {
    let mut done = api.client.subscribe(format!("{DONE_PREFIX}>")).await?;
    let started: RunStarted = api.call(endpoint::RUNS_START, &req).await?;
    if no_wait {
        return report(api, started.run_id).await;
    }
    let bar = progress_bar(&started, quiet);
    let mut pending: HashSet<Uuid> = started.job_ids.iter().copied().collect();
    loop {
        if pending.is_empty() {
            let r = report(api, started.run_id).await?;
            if r.progress.finished {
                bar.finish_and_clear();
                return Ok(r);
            }
        }
        tokio::select! {
            Some(msg) = done.next() => {
                let id = msg.subject.as_str().strip_prefix(DONE_PREFIX).and_then(|s| s.parse().ok());
                if id.is_some_and(|id| pending.remove(&id)) {
                    bar.inc(1);
                }
            }
            // Notices can be missed (e.g. a dispatcher restart): re-read the progress now and then.
            _ = tokio::time::sleep(Duration::from_secs(5)) => {
                let r = report(api, started.run_id).await?;
                if r.progress.finished {
                    bar.finish_and_clear();
                    return Ok(r);
                }
                bar.set_position(u64::from(r.progress.jobs_done));
            }
        }
    }
}

fn progress_bar(started: &RunStarted, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(started.job_ids.len() as u64);
    let style = indicatif::ProgressStyle::with_template(
        "{spinner} matrix {msg} [{bar:30}] {pos}/{len} jobs, {elapsed}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(format!(
        "{} pairs, {} rounds",
        started.pairs, started.rounds
    ));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub async fn report(api: &Api, run_id: Uuid) -> anyhow::Result<RunReport> {
    api.call(endpoint::RUNS_GET, &RunIdRequest { run_id }).await
}

pub async fn list(api: &Api) -> anyhow::Result<ListRunsReply> {
    api.call(endpoint::RUNS_LIST, &ListRunsRequest { limit: Some(20) })
        .await
}

/// Prints the report; fails (exit 2 by the caller) when jobs failed.
pub fn print(r: &RunReport, format: Format, pairs: bool) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(r)?),
        Format::Csv => print!("{}", csv(r)),
        Format::Markdown => print!("{}", markdown(r)),
        Format::Table => {
            println!("{}", table(r));
            if pairs {
                println!("{}", pair_table(r));
            }
            println!("{}", footer(r));
        }
    }
    if !r.progress.finished {
        bail!(
            "the run is not finished: {}/{} jobs done",
            r.progress.jobs_done,
            r.progress.jobs
        );
    }
    Ok(())
}

/// `median unit (min–max)`, with ` ~` when the spread is too wide to trust; `unit` picks the
/// scale, unit and decimals from the median, so the range reads in the same unit.
fn cell(s: &Option<Spread>, unit: fn(f64) -> (f64, &'static str, usize)) -> String {
    let Some(s) = s else { return "-".into() };
    let (scale, name, decimals) = unit(s.median);
    let v = |x: f64| format!("{:.decimals$}", x / scale);
    if s.samples == 1 {
        return format!("{} {name}", v(s.median));
    }
    let mark = if s.wide { " ~" } else { "" };
    format!("{} {name} ({}–{}){mark}", v(s.median), v(s.min), v(s.max))
}

fn ms(_: f64) -> (f64, &'static str, usize) {
    (1.0, "ms", 3)
}

fn bits(median: f64) -> (f64, &'static str, usize) {
    let (scale, unit) = bit_unit(median);
    (scale, unit, sig3_decimals(median / scale))
}

fn pct(v: f64) -> String {
    let s = format!("{v:.1}");
    format!("{} %", s.strip_suffix(".0").unwrap_or(&s))
}

/// The worst loss seen: one lossy sample is worth seeing.
fn loss(f: &Figures) -> String {
    f.loss_percent
        .as_ref()
        .map(|s| pct(s.max))
        .unwrap_or("-".into())
}

fn hops(f: &Figures) -> String {
    f.hops.map(|h| h.to_string()).unwrap_or("-".into())
}

fn udp(r: &RunReport) -> bool {
    r.request.udp
}

fn header(r: &RunReport) -> Vec<&'static str> {
    let mut h = vec![
        "PATH",
        "PAIRS",
        "TCP BANDWIDTH",
        "RETRANSMITS",
        "RTT AVG",
        "LOSS",
        "HOPS",
    ];
    if udp(r) {
        h.extend(["UDP JITTER", "UDP LOSS"]);
    }
    h
}

fn class_row(r: &RunReport, c: &ClassReport) -> Vec<String> {
    let f = &c.figures;
    let mut row = vec![
        c.class.label().to_string(),
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
    if udp(r) {
        row.push(cell(&f.udp_jitter_ms, ms));
        row.push(
            f.udp_lost_percent
                .as_ref()
                .map(|s| pct(s.median))
                .unwrap_or("-".into()),
        );
    }
    if f.jobs_failed > 0 {
        row[0] = format!("{} ({} failed)", row[0], f.jobs_failed);
    }
    row
}

pub fn table(r: &RunReport) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(header(r));
    for c in &r.classes {
        t.add_row(class_row(r, c));
    }
    t.to_string()
}

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
    let p = &r.progress;
    out += &format!(
        "run {}: {} pairs in {} rounds, {} samples each; {}/{} jobs succeeded",
        p.run_id, p.pairs, p.rounds, r.request.samples, p.jobs_succeeded, p.jobs
    );
    let wide = r.classes.iter().any(|c| {
        [&c.figures.tcp_bits_per_second, &c.figures.rtt_avg_ms]
            .iter()
            .any(|s| s.as_ref().is_some_and(|s| s.wide))
    });
    if wide {
        out += &format!(
            "\n~ spread (max − min) above {:.0} % of the median: too noisy to trust; try more --samples",
            TRUST_SPREAD * 100.0
        );
    }
    out
}

fn opt(s: &Option<Spread>, f: impl Fn(&Spread) -> f64) -> String {
    s.as_ref().map(|s| format!("{}", f(s))).unwrap_or_default()
}

pub fn csv(r: &RunReport) -> String {
    let mut out = String::from(
        "path,pairs,tcp_bits_per_second,tcp_bits_per_second_min,tcp_bits_per_second_max,\
         tcp_retransmits,rtt_avg_ms,rtt_avg_ms_min,rtt_avg_ms_max,loss_percent,hops,\
         udp_jitter_ms,udp_lost_percent,jobs_failed\n",
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
        ];
        out += &fields.join(",");
        out.push('\n');
    }
    out
}

pub fn markdown(r: &RunReport) -> String {
    let h = header(r);
    let mut out = format!("| {} |\n|{}\n", h.join(" | "), "---|".repeat(h.len()));
    for c in &r.classes {
        out += &format!("| {} |\n", class_row(r, c).join(" | "));
    }
    out += &format!("\n{}\n", footer(r).replace('\n', "\n\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_report() -> RunReport {
        serde_json::from_str(include_str!("../tests/fixtures/run_report.json")).unwrap()
    }

    #[test]
    fn table_snapshot() {
        let r = sample_report();
        insta::assert_snapshot!(format!("{}\n{}", table(&r), footer(&r)));
    }

    #[test]
    fn csv_snapshot() {
        insta::assert_snapshot!(csv(&sample_report()));
    }

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(markdown(&sample_report()));
    }
}

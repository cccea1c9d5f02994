//! `podperf health`: runs a sweep round now and names what is wrong — a node that cannot send, is
//! unreachable or isolated, a single unreachable pair, a slow or lossy node, and (from the latest
//! TCP iperf3 results of the last `--bandwidth-max-age`) a node slow in bandwidth. Exit 0 when
//! healthy, 3 when something was found.

use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use podperf_protocol::health::{HealthReport, HealthRequest, BANDWIDTH_MAX_AGE_S_MAX};

use super::sweep::RoundArgs;
use super::{print, Ctx};
use crate::export::Output;

/// Exit code when a finding was named.
pub const EXIT_PROBLEMS: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct Health {
    #[command(flatten)]
    round: RoundArgs,
    /// Use the latest TCP bandwidth per node pair among iperf3 results this recent (e.g. 30m,
    /// 1h; 0 = none; at most 7 days).
    #[arg(long, default_value = "1h", value_parser = parse_max_age)]
    bandwidth_max_age: Duration,
    /// Name a node `gone` when it has no live worker now but its workers ran jobs this recently
    /// (a node cut off longer than the liveness TTL is not in the round; e.g. 10m; 0 = never; at
    /// most 7 days).
    #[arg(long, default_value = "10m", value_parser = parse_max_age)]
    gone_max_age: Duration,
}

fn parse_max_age(s: &str) -> Result<Duration, String> {
    let d = if s == "0" {
        Duration::ZERO
    } else {
        humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 30m, 1h, 0)"))?
    };
    if d.as_secs() > BANDWIDTH_MAX_AGE_S_MAX {
        return Err(format!("at most {BANDWIDTH_MAX_AGE_S_MAX} s (7 days)"));
    }
    Ok(d)
}

impl Health {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let round = self.round.round();
        let req = HealthRequest {
            count: round.count,
            interval_ms: round.interval_ms,
            from: round.from,
            to: round.to,
            bandwidth_max_age_s: self.bandwidth_max_age.as_secs(),
            gone_max_age_s: self.gone_max_age.as_secs(),
        };
        let (_, report) = ctx.client.health(&req).await?;
        let text = match ctx.output {
            Output::Json => serde_json::to_string_pretty(&report)? + "\n",
            _ => render(&report),
        };
        print(&text)?;
        Ok(if report.healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_PROBLEMS)
        })
    }
}

fn render(r: &HealthReport) -> String {
    let note = match &r.bandwidth_unavailable {
        Some(why) => format!("(no bandwidth results used: {why})\n"),
        None => String::new(),
    };
    if r.healthy {
        return format!("healthy: {} nodes, nothing found\n{note}", r.nodes);
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t.set_header(["finding", "node", "from", "path", "detail"]);
    for f in &r.findings {
        t.add_row([
            f.finding.as_str().to_string(),
            f.node.clone(),
            f.peer.clone().unwrap_or_default(),
            f.path.map(|p| p.as_str().to_string()).unwrap_or_default(),
            f.message.clone(),
        ]);
    }
    format!(
        "{} findings on {} nodes\n{t}\n{note}",
        r.findings.len(),
        r.nodes
    )
}

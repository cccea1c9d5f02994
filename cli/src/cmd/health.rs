//! `podperf health`: runs a sweep round now and names what is wrong — a node that cannot send, is
//! unreachable or isolated, a single unreachable pair, a slow or lossy node. Exit 0 when healthy,
//! 3 when something was found.

use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use podperf_protocol::health::HealthReport;

use super::sweep::{round, RoundArgs};
use super::{print, Ctx};
use crate::export::Output;

/// Exit code when a finding was named.
pub const EXIT_PROBLEMS: u8 = 3;

#[derive(Debug, clap::Args)]
pub struct Health {
    #[command(flatten)]
    round: RoundArgs,
}

impl Health {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let grid = round(&ctx.client, &self.round).await?;
        let report = podperf_report::health(&grid);
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
    if r.healthy {
        return format!("healthy: {} nodes, nothing found\n", r.nodes);
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
    format!("{} findings on {} nodes\n{t}\n", r.findings.len(), r.nodes)
}

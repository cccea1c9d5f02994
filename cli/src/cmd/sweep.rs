//! `podperf sweep`: one full-mesh latency round now — one fping sweep per live worker toward
//! every other, all at once (latency probes share nodes) — printed as node × node RTT/loss grids.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use podperf_client::Client;
use podperf_protocol::api::JobRecord;
use podperf_protocol::health::{GridCell, SweepGrid};
use podperf_protocol::job::{JobParams, JobSpec};
use podperf_protocol::sweep::{SweepParams, SweepTargets};
use podperf_report::SourceInfo;

use super::{print, Ctx};
use crate::export::Output;

/// How long past a sweep's deadline the round waits for it.
const WAIT_SLACK: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub struct RoundArgs {
    /// Echo requests per target (1–100).
    #[arg(long, default_value_t = 5)]
    pub count: u32,
    /// Milliseconds between two requests to one target (20–10000).
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u32,
    /// Only these source workers (id, pod name or unique prefix; repeatable). Default: every live
    /// worker.
    #[arg(long = "from")]
    pub from: Vec<String>,
    /// Only these target workers (repeatable). Default: every live worker but the source.
    #[arg(long = "to")]
    pub to: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct Sweep {
    #[command(flatten)]
    round: RoundArgs,
}

impl Sweep {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let grid = round(&ctx.client, &self.round).await?;
        let text = match ctx.output {
            Output::Json => serde_json::to_string_pretty(&grid)? + "\n",
            _ => render(&grid),
        };
        print(&text)?;
        Ok(if grid.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        })
    }
}

/// Runs one round (one batch: all sweeps or none are accepted) and waits for every sweep.
pub async fn round(client: &Client, args: &RoundArgs) -> anyhow::Result<SweepGrid> {
    let workers = client.workers().await?;
    let sources: HashMap<String, SourceInfo> = workers
        .iter()
        .map(|w| {
            let info = SourceInfo {
                node: w.info.node_name.clone(),
                host_network: w.info.host_network,
            };
            (w.info.worker_id.clone(), info)
        })
        .collect();
    let from: Vec<String> = if args.from.is_empty() {
        workers.iter().map(|w| w.info.worker_id.clone()).collect()
    } else {
        args.from.clone()
    };
    if args.from.is_empty() && args.to.is_empty() && workers.len() < 2 {
        anyhow::bail!("a sweep round needs at least two live workers");
    }
    let targets = if args.to.is_empty() {
        SweepTargets::All
    } else {
        SweepTargets::Workers(args.to.clone())
    };
    let specs = from
        .into_iter()
        .map(|source| JobSpec {
            family: None,
            source,
            target: None,
            params: JobParams::Sweep(SweepParams {
                targets: targets.clone(),
                count: args.count,
                interval_ms: args.interval_ms,
                resolved: vec![],
            }),
            timeout_s: None,
        })
        .collect();
    let ids = client.submit(specs).await?;
    let waits = ids
        .iter()
        .map(|id| client.wait_past_deadline(*id, WAIT_SLACK));
    let records: Vec<JobRecord> = futures::future::try_join_all(waits).await?;
    Ok(podperf_report::grid(&sources, &records))
}

/// One table per path class (rows: from, columns: to), then the sweeps that failed.
pub fn render(grid: &SweepGrid) -> String {
    let mut out = format!("{} sweeps\n", grid.sweeps);
    let mut paths: Vec<_> = grid.cells.iter().map(|c| c.path).collect();
    paths.dedup();
    for path in paths {
        let cells: Vec<&GridCell> = grid.cells.iter().filter(|c| c.path == path).collect();
        let mut nodes: Vec<&str> = cells
            .iter()
            .flat_map(|c| [c.src_node.as_str(), c.dst_node.as_str()])
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        t.set_header(std::iter::once("from \\ to").chain(nodes.iter().copied()));
        for src in &nodes {
            let row = nodes.iter().map(|dst| {
                cells
                    .iter()
                    .find(|c| c.src_node == *src && c.dst_node == *dst)
                    .map(|c| cell(c))
                    .unwrap_or_default()
            });
            t.add_row(std::iter::once(src.to_string()).chain(row));
        }
        out += &format!("\n{} (RTT avg, loss)\n{t}\n", path.as_str());
    }
    for f in &grid.failed {
        let msg = f.message.as_deref().unwrap_or("");
        out += &format!(
            "\nsweep from {} ({}) {}: {msg}\n",
            f.node, f.worker_id, f.state
        );
    }
    out
}

/// `0.112 ms`, `0.112 ms, 20% loss`, or `no reply` (100 % loss).
fn cell(c: &GridCell) -> String {
    match c.rtt_avg_ms {
        None => "no reply".into(),
        Some(rtt) if c.loss_percent > 0.0 => format!("{rtt:.3} ms, {:.0}% loss", c.loss_percent),
        Some(rtt) => format!("{rtt:.3} ms"),
    }
}

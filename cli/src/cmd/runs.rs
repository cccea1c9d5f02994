//! `podperf runs [ID]`: the matrix runs, newest first, or one run's report.

use std::process::ExitCode;

use anyhow::bail;
use podperf_protocol::run::{ListRunsRequest, RunReport, VerdictStatus};
use uuid::Uuid;

use super::{print, Ctx};

/// How many runs the list shows.
const LIST_LIMIT: u32 = 20;

#[derive(Debug, clap::Args)]
pub struct Runs {
    run_id: Option<Uuid>,
    /// Also print one row per measured pair.
    #[arg(long)]
    pairs: bool,
}

impl Runs {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        match self.run_id {
            Some(id) => {
                let report = ctx.client.run(id).await?;
                print_report(ctx, &report, self.pairs)
            }
            None => {
                let req = ListRunsRequest {
                    limit: Some(LIST_LIMIT),
                };
                let list = ctx.client.runs(&req).await?;
                print(&ctx.out().runs(&list))?;
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// Prints a run's report (`matrix`, `runs ID`); an error when the run is not finished, exit 3
/// when its gate (`--tolerance`, `--max-rtt-ratio`) failed, else exit 2 when some of its jobs did
/// not succeed.
pub fn print_report(ctx: &Ctx, r: &RunReport, pairs: bool) -> anyhow::Result<ExitCode> {
    print(&ctx.out().run_report(r, pairs))?;
    let p = &r.progress;
    if !p.finished {
        bail!(
            "the run is not finished: {}/{} jobs done",
            p.jobs_done,
            p.jobs
        );
    }
    let failed_gate = r
        .verdict
        .as_ref()
        .is_some_and(|v| v.status == VerdictStatus::Fail);
    Ok(if failed_gate {
        ExitCode::from(3)
    } else if p.jobs_succeeded == p.jobs {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

//! `podperf job ID`: one job, with its result.

use std::process::ExitCode;

use podperf_protocol::api::JobRecord;
use uuid::Uuid;

use super::{print, Ctx};

#[derive(Debug, clap::Args)]
pub struct Job {
    job_id: Uuid,
}

impl Job {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let rec = ctx.client.get(self.job_id).await?;
        print_job(ctx, &rec).await?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints one job (`job`, `run`, `cancel`), with pod names where the output shows them.
pub async fn print_job(ctx: &Ctx, rec: &JobRecord) -> anyhow::Result<()> {
    let names = ctx.names().await;
    print(&ctx.out().job(rec, &names))
}

//! `podperf cancel ID`: cancel a job; prints the record once the cancellation is stored.

use std::process::ExitCode;

use uuid::Uuid;

use super::job::print_job;
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Cancel {
    job_id: Uuid,
}

impl Cancel {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let rec = ctx.client.cancel(self.job_id).await?;
        print_job(ctx, &rec).await?;
        Ok(ExitCode::SUCCESS)
    }
}

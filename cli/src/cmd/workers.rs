//! `podperf workers`: the live workers.

use std::process::ExitCode;

use podperf_protocol::api::ListWorkersReply;
use podperf_protocol::now_ms;

use super::{print, Ctx};

#[derive(Debug, clap::Args)]
pub struct Workers {}

impl Workers {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let workers = ctx.client.workers().await?;
        let reply = ListWorkersReply {
            total: workers.len() as u32,
            workers,
        };
        print(&ctx.out().workers(&reply, now_ms()))?;
        Ok(ExitCode::SUCCESS)
    }
}

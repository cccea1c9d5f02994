//! `podperf watch`: job events and results as workers publish them, until Ctrl-C.

use std::process::ExitCode;

use futures::StreamExt;
use podperf_client::LiveFilter;

use super::{print, Ctx};

/// Printed on stderr once subscribed, in every output mode: from then on nothing published is
/// missed (scripts and tests wait for it).
pub const READY: &str = "following events and results (Ctrl-C to stop)";

#[derive(Debug, clap::Args)]
pub struct Watch {}

impl Watch {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let mut live = ctx.client.live(LiveFilter::All).await?;
        eprintln!("{READY}");
        let out = ctx.out();
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                item = live.next() => match item {
                    Some(item) => {
                        if let Some(text) = out.live(&item) {
                            print(&text)?;
                        }
                    }
                    None => return Ok(ExitCode::SUCCESS),
                },
                _ = &mut stop => return Ok(ExitCode::SUCCESS),
            }
        }
    }
}

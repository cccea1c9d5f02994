//! The bench's use of the API: every request goes through `podperf-client`; here only the job the
//! figures submit and the wait for the fleet to show up.

use std::time::Duration;

use podperf_client::Client;
use podperf_protocol::job::{JobParams, JobSpec, NoopParams};

/// How long a client waits for a job it submitted (its own `timeout_s`, the dispatcher ends it
/// by then).
pub const WAIT: Duration = Duration::from_secs(120);

pub fn noop(source: &str) -> JobSpec {
    JobSpec {
        family: None,
        source: source.to_string(),
        target: None,
        params: JobParams::Noop(NoopParams { sleep_ms: 0 }),
        timeout_s: Some(120),
    }
}

/// Waits until the dispatcher's view holds at least `n` workers.
pub async fn wait_workers(client: &Client, n: usize, limit: Duration) -> anyhow::Result<Duration> {
    let t0 = tokio::time::Instant::now();
    loop {
        if let Ok(w) = client.workers().await {
            if w.len() >= n {
                return Ok(t0.elapsed());
            }
        }
        if t0.elapsed() > limit {
            anyhow::bail!("fewer than {n} workers in the view after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! What a client of the dispatcher does: API calls, and waiting for a job exactly as the CLI does
//! (`cli/src/client.rs`: subscribe `podperf.done.<id>`, get, wait for the notice, get again).

use std::time::Duration;

use anyhow::{anyhow, Context};
use async_nats::Client;
use futures::StreamExt;
use podperf_protocol::api::*;
use podperf_protocol::job::{JobParams, JobSpec, NoopParams};
use podperf_protocol::names::{api_subject, done_subject, endpoint};
use podperf_protocol::worker::WorkerView;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(30);

pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    client: &Client,
    ep: &str,
    req: &Req,
) -> anyhow::Result<Resp> {
    let subject = api_subject(ep);
    let body = serde_json::to_vec(req)?;
    let msg = tokio::time::timeout(TIMEOUT, client.request(subject.clone(), body.into()))
        .await
        .map_err(|_| anyhow!("no answer on {subject}"))?
        .map_err(|e| anyhow!("{subject}: {e}"))?;
    let reply: ApiReply<Resp> =
        serde_json::from_slice(&msg.payload).with_context(|| format!("reply from {subject}"))?;
    reply.into_result().map_err(|e| anyhow!(e))
}

/// Every live worker, page by page (a page holds at most `WORKERS_PAGE_MAX`).
pub async fn workers(client: &Client) -> anyhow::Result<Vec<WorkerView>> {
    let mut all = Vec::new();
    loop {
        let req = ListWorkersRequest {
            offset: Some(all.len() as u32),
            limit: None,
        };
        let page: ListWorkersReply = call(client, endpoint::WORKERS_LIST, &req).await?;
        let done = page.workers.is_empty() || all.len() + page.workers.len() >= page.total as usize;
        all.extend(page.workers);
        if done {
            return Ok(all);
        }
    }
}

/// Size in bytes of the raw `workers.list` reply, and the error when there is none.
pub async fn workers_raw(client: &Client) -> anyhow::Result<usize> {
    let subject = api_subject(endpoint::WORKERS_LIST);
    let msg = tokio::time::timeout(TIMEOUT, client.request(subject, "{}".into()))
        .await
        .map_err(|_| anyhow!("no answer"))?
        .map_err(|e| anyhow!("{e}"))?;
    Ok(msg.payload.len())
}

pub fn noop(source: &str) -> JobSpec {
    JobSpec {
        source: source.to_string(),
        target: None,
        params: JobParams::Noop(NoopParams { sleep_ms: 0 }),
        timeout_s: Some(120),
    }
}

pub async fn submit(client: &Client, jobs: Vec<JobSpec>) -> anyhow::Result<Vec<Uuid>> {
    let r: SubmitReply = call(client, endpoint::JOBS_SUBMIT, &SubmitRequest { jobs }).await?;
    Ok(r.job_ids)
}

pub async fn get(client: &Client, job_id: Uuid) -> anyhow::Result<JobRecord> {
    call(client, endpoint::JOBS_GET, &JobIdRequest { job_id }).await
}

/// Waits as the CLI does; returns the record and how many `jobs.get` calls it took.
pub async fn wait(client: &Client, job_id: Uuid) -> anyhow::Result<(JobRecord, u32)> {
    let mut done = client.subscribe(done_subject(job_id)).await?;
    let mut gets = 0;
    loop {
        let rec = get(client, job_id).await?;
        gets += 1;
        if rec.state.is_terminal() {
            return Ok((rec, gets));
        }
        if gets > 20 {
            anyhow::bail!("job {job_id} still {} after {gets} reads", rec.state);
        }
        let notice = tokio::time::timeout(Duration::from_secs(5), done.next()).await;
        if let Ok(Some(msg)) = notice {
            if let Ok(rec) = serde_json::from_slice::<JobRecord>(&msg.payload) {
                return Ok((rec, gets + 1)); // the notice carries the stored record
            }
        }
    }
}

/// Waits until the dispatcher's view holds at least `n` workers.
pub async fn wait_workers(client: &Client, n: usize, limit: Duration) -> anyhow::Result<Duration> {
    let t0 = tokio::time::Instant::now();
    loop {
        if let Ok(w) = workers(client).await {
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

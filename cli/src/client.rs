//! Calls to the dispatcher's API (`podperf.api.*`) and waiting for jobs to end.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use async_nats::{Client, RequestErrorKind};
use futures::StreamExt;
use podperf_protocol::api::{
    ApiReply, JobIdRequest, JobRecord, ListWorkersReply, ListWorkersRequest,
};
use podperf_protocol::names::{api_subject, done_subject, endpoint};
use podperf_protocol::worker::WorkerView;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

pub struct Api {
    pub client: Client,
    pub timeout: Duration,
}

impl Api {
    /// Sends `req` to `endpoint` and unwraps the `{"ok": …}` / `{"error": …}` envelope.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        endpoint: &str,
        req: &Req,
    ) -> anyhow::Result<Resp> {
        let subject = api_subject(endpoint);
        let body = serde_json::to_vec(req)?;
        let msg = tokio::time::timeout(
            self.timeout,
            self.client.request(subject.clone(), body.into()),
        )
        .await
        .map_err(|_| anyhow!("no answer on {subject} within {:?}", self.timeout))?
        .map_err(|err| match err.kind() {
            RequestErrorKind::NoResponders => {
                anyhow!("no dispatcher answers on {subject} (is podperf-dispatcher running?)")
            }
            _ => anyhow!("request to {subject} failed: {err}"),
        })?;
        let reply: ApiReply<Resp> = serde_json::from_slice(&msg.payload)
            .with_context(|| format!("malformed reply from {subject}"))?;
        match reply {
            ApiReply::Ok(v) => Ok(v),
            ApiReply::Error(e) => Err(anyhow!(e)),
        }
    }

    /// Every live worker, read page by page.
    pub async fn workers(&self) -> anyhow::Result<Vec<WorkerView>> {
        let mut all = Vec::new();
        loop {
            let req = ListWorkersRequest {
                offset: Some(all.len() as u32),
                limit: None,
            };
            let page: ListWorkersReply = self.call(endpoint::WORKERS_LIST, &req).await?;
            let done =
                page.workers.is_empty() || all.len() + page.workers.len() >= page.total as usize;
            all.extend(page.workers);
            if done {
                return Ok(all);
            }
        }
    }

    pub async fn job(&self, job_id: Uuid) -> anyhow::Result<JobRecord> {
        self.call(endpoint::JOBS_GET, &JobIdRequest { job_id })
            .await
    }

    /// Waits until the job is terminal: listens for the dispatcher's done notice, re-reading the
    /// record now and then in case a notice was missed (e.g. across a dispatcher restart).
    pub async fn wait(&self, job_id: Uuid, limit: Duration) -> anyhow::Result<JobRecord> {
        let mut done = self.client.subscribe(done_subject(job_id)).await?;
        let give_up = tokio::time::Instant::now() + limit;
        loop {
            let rec = self.job(job_id).await?;
            if rec.state.is_terminal() {
                return Ok(rec);
            }
            if tokio::time::Instant::now() >= give_up {
                bail!("job {job_id} is still {} after {limit:?}", rec.state);
            }
            let notice = tokio::time::timeout(Duration::from_secs(5), done.next()).await;
            if let Ok(Some(msg)) = notice {
                if let Ok(rec) = serde_json::from_slice::<JobRecord>(&msg.payload) {
                    return Ok(rec); // the notice carries the stored record
                }
            }
        }
    }
}

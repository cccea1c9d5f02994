//! The one place a job's end is stored and announced. The engine (its own verdicts: timed out,
//! lost, cancelled, undeliverable) and ingest (the workers' results) both go through [`Finisher`],
//! so every terminal state reaches waiting clients the same way.

use std::time::Duration;

use async_nats::Client;
use backon::{ExponentialBuilder, Retryable};
use podperf_protocol::api::JobRecord;
use podperf_protocol::names::done_subject;
use uuid::Uuid;

use crate::store::{Applied, Store, StoreError, Transition};

/// Stores transitions and announces the ones that end a job. Cheap to clone.
#[derive(Clone)]
pub struct Finisher {
    store: Store,
    client: Client,
}

impl Finisher {
    pub fn new(store: Store, client: Client) -> Finisher {
        Finisher { store, client }
    }

    /// Applies `t` once; when that made the job terminal, tells waiting clients
    /// ([`done_subject`]). A failed write is the caller's to retry (ingest has the stream
    /// redeliver it).
    pub async fn apply(&self, job_id: Uuid, t: &Transition) -> Result<Applied, StoreError> {
        let (applied, record) = self.store.transition_returning(job_id, t).await?;
        if let Some(rec) = record {
            announce(&self.client, &rec).await;
        }
        Ok(applied)
    }

    /// [`Finisher::apply`], retried with backoff while the store fails (nothing else would
    /// record the engine's own verdicts). Gives up after about two minutes: the job stays
    /// active in the store and a restarted dispatcher resumes it.
    pub async fn apply_retrying(&self, job_id: Uuid, t: &Transition) -> Option<Applied> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(29); // 30 tries in all
        let applied = (|| self.apply(job_id, t))
            .retry(backoff)
            // A deposed leader's write: retrying cannot help (the new leader resumes the job).
            .when(|err| !matches!(err, StoreError::Fenced { .. }))
            .notify(|err, _| {
                tracing::warn!(%job_id, %err, "cannot record the terminal state; retrying")
            })
            .await;
        match applied {
            Ok(applied) => Some(applied),
            Err(err @ StoreError::Fenced { .. }) => {
                tracing::warn!(%job_id, %err, "not recorded: this dispatcher is no longer the leader");
                None
            }
            Err(err) => {
                let what = "gave up recording the terminal state; a restart resumes it";
                tracing::error!(%job_id, %err, "{what}");
                None
            }
        }
    }
}

/// Tells waiting clients that `rec`'s terminal state is stored. The payload is the stored record
/// (JSON), so a waiting client needs no second request.
async fn announce(client: &Client, rec: &JobRecord) {
    let job_id = rec.job_id;
    let payload: bytes::Bytes = serde_json::to_vec(rec).expect("records serialise").into();
    if let Err(err) = client.publish(done_subject(job_id), payload).await {
        tracing::debug!(%job_id, %err, "could not announce the terminal state");
    }
}

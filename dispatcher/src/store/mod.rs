//! The queryable job store in Redis. Keys (all under `podperf:`, named in [`keys`]):
//! - `podperf:job:<id>` — hash: `state`, `source_worker`, `record` (the fixed part, JSON),
//!   `attempts`, `*_at_ms`, `reason`, `message`, `result`, `raw_output`; expires after retention.
//! - `podperf:jobs` / `podperf:jobs:state:<state>` / `podperf:jobs:worker:<id>` — sorted sets of job
//!   ids by creation time (ms), trimmed to the retention window.
//! - `podperf:jobs:active` — set of non-terminal job ids (what a restarted dispatcher resumes).
//! - `podperf:workers:known` — hash worker id → last worker info seen (tells offline from unknown).
//! - `podperf:run:<id>` — a matrix run (JSON), `podperf:runs` — run ids by creation time.
//! - `podperf:submit:<id>` — a submit's claim: the fingerprint of the batch and the answer given
//!   (JSON), kept for `PODPERF_SUBMIT_ID_TTL_S`, so a retried submit is stored once.
//!
//! # Layout
//! - [`keys`]: the key schema; `transition`: the state machine (one Lua script);
//! - `record`: a job as stored; `insert`: a batch, its run and its submit claim (one Lua
//!   script); `jobs`: read and page jobs;
//! - `runs`: matrix runs; `workers`: workers seen before; `fence`: the leader's epoch.

pub mod keys;

mod budget;
mod fence;
mod insert;
mod jobs;
mod record;
mod runs;
mod transition;
mod workers;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use insert::{Claim, Inserted};
pub use jobs::ListPage;
pub use record::{NewJob, ResolvedTarget};
pub use transition::{Applied, Transition};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The write carried the epoch of a leader that has been replaced: refused, never retried.
    #[error("fenced: epoch {epoch} is stale (a newer leader took over)")]
    Fenced { epoch: u64 },
    #[error("corrupt job record {job_id}: {message}")]
    Corrupt { job_id: String, message: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The Redis-backed store. Cheap to clone (one multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    retention: Duration,
    /// The transition script, built at start from the life-cycle order (`transition`).
    transition: Arc<redis::Script>,
    /// When the indexes were last trimmed to the retention window (epoch ms).
    last_trim_ms: Arc<AtomicU64>,
    /// The leader's fencing epoch its state changes carry (`None`: unfenced, for tools and tests).
    epoch: Option<u64>,
    /// How long a submit's claim is kept (`insert`), at most the retention.
    submit_id_ttl: Duration,
}

impl Store {
    /// Connects, retrying until Redis answers (a dispatcher may start before its Redis).
    pub async fn connect(url: &str, retention: Duration) -> Result<Store> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .without_max_times();
        let conn = (|| ConnectionManager::new_with_config(client.clone(), config.clone()))
            .retry(backoff)
            .notify(|err, _| tracing::warn!(%err, "redis not reachable yet; retrying"))
            .await?;
        Ok(Store {
            conn,
            retention,
            transition: Arc::new(redis::Script::new(&transition::script())),
            last_trim_ms: Default::default(),
            epoch: None,
            submit_id_ttl: Duration::from_secs(podperf_protocol::api::SUBMIT_ID_TTL_S),
        })
    }

    /// This store, keeping submit claims for `ttl` (at most the retention).
    pub fn with_submit_id_ttl(self, ttl: Duration) -> Store {
        Store {
            submit_id_ttl: ttl,
            ..self
        }
    }

    fn retention_s(&self) -> u64 {
        self.retention.as_secs().max(1)
    }
}

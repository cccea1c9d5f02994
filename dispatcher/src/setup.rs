//! Creates (idempotently) the liveness bucket and the results stream.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use podperf_protocol::names::{
    DISPATCHERS_BUCKET, RESULTS_STREAM, RESULTS_STREAM_SUBJECTS, WORKERS_BUCKET,
};

use podperf_protocol::schedule::SCHEDULES_BUCKET;

use crate::config::DispatcherConfig;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot create the {WORKERS_BUCKET} bucket")]
    Bucket(#[source] jetstream::context::CreateKeyValueError),
    #[error("cannot create the {DISPATCHERS_BUCKET} bucket")]
    Dispatchers(#[source] jetstream::context::CreateKeyValueError),
    #[error("cannot create the {SCHEDULES_BUCKET} bucket")]
    Schedules(#[source] jetstream::context::CreateKeyValueError),
    #[error("cannot create the {RESULTS_STREAM} stream")]
    Stream(#[source] jetstream::context::CreateStreamError),
    #[error("cannot read back the {RESULTS_STREAM} stream")]
    StreamInfo(#[source] jetstream::context::GetStreamError),
}

/// The liveness bucket: `max_age` = TTL, history 1, expiry markers; file storage unless
/// configured for memory.
pub async fn workers_bucket(
    js: &jetstream::Context,
    cfg: &DispatcherConfig,
) -> Result<kv::Store, SetupError> {
    let config = kv::Config {
        bucket: WORKERS_BUCKET.to_string(),
        description: "podperf worker liveness (key = worker id, expires by TTL)".into(),
        history: 1,
        max_age: cfg.worker_ttl,
        storage: if cfg.liveness_in_memory {
            stream::StorageType::Memory
        } else {
            stream::StorageType::File
        },
        num_replicas: cfg.replicas,
        limit_markers: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    js.create_or_update_key_value(config)
        .await
        .map_err(SetupError::Bucket)
}

/// The results stream: every event and result, file storage, kept for the retention period.
pub async fn results_stream(
    js: &jetstream::Context,
    cfg: &DispatcherConfig,
) -> Result<stream::Stream, SetupError> {
    let config = stream::Config {
        name: RESULTS_STREAM.to_string(),
        description: Some("podperf job events and terminal results".into()),
        subjects: RESULTS_STREAM_SUBJECTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        max_age: cfg.retention,
        // At the budget the oldest messages go: new results are always accepted.
        max_bytes: cfg.results_max_bytes as i64,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        ..Default::default()
    };
    js.create_or_update_stream(config)
        .await
        .map_err(SetupError::Stream)?;
    js.get_stream(RESULTS_STREAM)
        .await
        .map_err(SetupError::StreamInfo)
}

/// The dispatchers bucket: the leader lease and one key per replica, all expiring after the
/// leader TTL unless refreshed; history 1, file storage.
pub async fn dispatchers_bucket(
    js: &jetstream::Context,
    cfg: &DispatcherConfig,
) -> Result<kv::Store, SetupError> {
    let config = kv::Config {
        bucket: DISPATCHERS_BUCKET.to_string(),
        description: "podperf dispatcher replicas and the leader lease (expire by the leader TTL)"
            .into(),
        history: 1,
        max_age: cfg.leader_ttl,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    };
    js.create_or_update_key_value(config)
        .await
        .map_err(SetupError::Dispatchers)
}

/// The schedules bucket: one key per schedule (its name), kept until removed (no `max_age`),
/// history 1, file storage and the replicas of the other buckets: schedules survive a
/// dispatcher and a NATS restart.
pub async fn schedules_bucket(
    js: &jetstream::Context,
    cfg: &DispatcherConfig,
) -> Result<kv::Store, SetupError> {
    let config = kv::Config {
        bucket: SCHEDULES_BUCKET.to_string(),
        description: "podperf schedules (key = schedule name)".into(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: cfg.replicas,
        ..Default::default()
    };
    js.create_or_update_key_value(config)
        .await
        .map_err(SetupError::Schedules)
}

//! `podperf.api.status`, answered by any replica: the replicas from the dispatchers bucket (the
//! leader first), whether JetStream and Redis answer this replica, the queue depth and each
//! store's use against its budget.

use std::time::{Duration, Instant};

use futures::StreamExt;
use podperf_protocol::api::ApiError;
use podperf_protocol::names::{REPLICA_KEY_PREFIX, RESULTS_STREAM};
use podperf_protocol::status::{DispatcherInfo, Reachability, Role, StatusReply, StoreUse};

use crate::api::{parse, Api};

/// How long each backend has to answer.
const PROBE_WITHIN: Duration = Duration::from_secs(5);

impl Api {
    pub(crate) async fn status(&self, payload: &[u8]) -> Result<StatusReply, ApiError> {
        let _: serde_json::Value = parse(payload)?;
        let mut store = StoreUse {
            results_max_bytes: self.cfg.results_max_bytes,
            jobs_max: self.cfg.store_max_jobs,
            ..StoreUse::default()
        };
        let t0 = Instant::now();
        let nats =
            match tokio::time::timeout(PROBE_WITHIN, self.js.get_stream(RESULTS_STREAM)).await {
                Ok(Ok(mut stream)) => match stream.info().await {
                    Ok(info) => {
                        store.results_bytes = info.state.bytes;
                        store.results_messages = info.state.messages;
                        reachable(t0)
                    }
                    Err(err) => unreachable_because(err.to_string()),
                },
                Ok(Err(err)) => unreachable_because(err.to_string()),
                Err(_) => unreachable_because(format!("no answer within {PROBE_WITHIN:?}")),
            };
        let t0 = Instant::now();
        let probe = async {
            let depth = self.store.active_count().await?;
            let kept = self.store.jobs_kept().await?;
            let used = self.store.used_memory().await?;
            Ok::<_, crate::store::StoreError>((depth, kept, used))
        };
        let mut queue_depth = 0;
        let redis = match tokio::time::timeout(PROBE_WITHIN, probe).await {
            Ok(Ok((depth, kept, used))) => {
                queue_depth = depth as u64;
                store.jobs_kept = kept;
                store.redis_used_bytes = used;
                reachable(t0)
            }
            Ok(Err(err)) => unreachable_because(err.to_string()),
            Err(_) => unreachable_because(format!("no answer within {PROBE_WITHIN:?}")),
        };
        let me = self.leadership.info();
        let mut dispatchers = self.replicas().await;
        // This replica's own view is fresher than its key (refreshed every TTL/3 or TTL/5).
        dispatchers.retain(|d| d.dispatcher_id != me.dispatcher_id);
        dispatchers.push(me.clone());
        dispatchers.sort_by_key(|d| (d.role != Role::Leader, d.since_ms));
        Ok(StatusReply {
            dispatchers,
            answered_by: me.dispatcher_id,
            nats,
            redis,
            queue_depth,
            store,
        })
    }

    /// The replicas whose keys have not expired.
    async fn replicas(&self) -> Vec<DispatcherInfo> {
        let read = async {
            let mut out = Vec::new();
            let Ok(mut keys) = self.dispatchers.keys().await else {
                return out;
            };
            while let Some(Ok(key)) = keys.next().await {
                if !key.starts_with(REPLICA_KEY_PREFIX) {
                    continue;
                }
                if let Ok(Some(v)) = self.dispatchers.get(&key).await {
                    if let Ok(info) = serde_json::from_slice::<DispatcherInfo>(&v) {
                        out.push(info);
                    }
                }
            }
            out
        };
        tokio::time::timeout(PROBE_WITHIN, read)
            .await
            .unwrap_or_default()
    }
}

fn reachable(t0: Instant) -> Reachability {
    Reachability {
        reachable: true,
        rtt_ms: Some(t0.elapsed().as_millis() as u64),
        error: None,
    }
}

fn unreachable_because(error: String) -> Reachability {
    Reachability {
        reachable: false,
        rtt_ms: None,
        error: Some(error),
    }
}

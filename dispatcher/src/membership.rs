//! The membership view: which workers are alive, kept by watching the liveness bucket with history
//! (current state first, then every change). A Delete/Purge entry — the worker deregistered, or
//! its key expired by TTL — means the worker is gone. No polling.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use podperf_protocol::worker::{WorkerInfo, WorkerView};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A change the engine needs to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    Up(WorkerInfo),
    Gone(String),
}

/// The live workers, shared by the API and the engine.
#[derive(Clone, Default)]
pub struct Members {
    inner: Arc<RwLock<HashMap<String, WorkerView>>>,
}

impl Members {
    pub fn get(&self, id: &str) -> Option<WorkerView> {
        self.inner.read().unwrap().get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.inner.read().unwrap().contains_key(id)
    }

    /// All live workers, ordered by node then pod name.
    pub fn snapshot(&self) -> Vec<WorkerView> {
        let mut v: Vec<WorkerView> = self.inner.read().unwrap().values().cloned().collect();
        v.sort_by(|a, b| {
            (&a.info.node_name, &a.info.pod_name).cmp(&(&b.info.node_name, &b.info.pod_name))
        });
        v
    }

    /// Applies one bucket entry; returns the event it means, if any.
    fn apply(&self, entry: &kv::Entry) -> Option<MemberEvent> {
        let mut map = self.inner.write().unwrap();
        match entry.operation {
            Operation::Put => {
                let info: WorkerInfo = match serde_json::from_slice(&entry.value) {
                    Ok(i) => i,
                    Err(err) => {
                        tracing::warn!(key = %entry.key, %err, "ignoring malformed worker info");
                        return None;
                    }
                };
                let last_seen_at_ms = (entry.created.unix_timestamp_nanos() / 1_000_000) as u64;
                let new = !map.contains_key(&entry.key);
                let view = WorkerView {
                    info: info.clone(),
                    last_seen_at_ms,
                };
                map.insert(entry.key.clone(), view);
                new.then_some(MemberEvent::Up(info))
            }
            Operation::Delete | Operation::Purge => map
                .remove(&entry.key)
                .map(|_| MemberEvent::Gone(entry.key.clone())),
        }
    }
}

/// Starts watching; returns once the current state has been loaded (so callers can trust the view).
pub async fn start(
    store: kv::Store,
    members: Members,
    events: mpsc::UnboundedSender<MemberEvent>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, kv::WatchError> {
    let mut watch = store.watch_with_history(">").await?;
    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel::<()>();
    let empty = store
        .status()
        .await
        .map(|s| s.values() == 0)
        .unwrap_or(false);
    let mut synced = Some(synced_tx);
    if empty {
        let _ = synced.take().map(|tx| tx.send(()));
    }
    let handle = tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                n = watch.next() => n,
                _ = shutdown.cancelled() => return,
            };
            match next {
                Some(Ok(entry)) => {
                    if let Some(ev) = members.apply(&entry) {
                        log_event(&ev);
                        let _ = events.send(ev);
                    }
                    if entry.delta == 0 || entry.seen_current {
                        let _ = synced.take().map(|tx| tx.send(()));
                    }
                }
                Some(Err(err)) => tracing::warn!(%err, "membership watch error"),
                None => {
                    tracing::warn!("membership watch ended; watching again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    match store.watch_with_history(">").await {
                        Ok(w) => watch = w,
                        Err(err) => tracing::warn!(%err, "cannot watch the liveness bucket"),
                    }
                }
            }
        }
    });
    // The view is usable without the initial sync (e.g. an empty bucket's status was stale).
    let _ = tokio::time::timeout(Duration::from_secs(5), synced_rx).await;
    Ok(handle)
}

fn log_event(ev: &MemberEvent) {
    match ev {
        MemberEvent::Up(info) => tracing::info!(
            worker_id = %info.worker_id, pod = %info.pod_name, node = %info.node_name,
            ip = %info.pod_ip, "worker up"
        ),
        MemberEvent::Gone(id) => tracing::info!(worker_id = %id, "worker gone"),
    }
}

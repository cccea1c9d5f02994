//! The membership view: which workers are alive, kept by watching the liveness bucket with history
//! (current state first, then every change). A Delete/Purge entry — the worker deregistered, or
//! its key expired by TTL — means the worker is gone. No polling.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use podperf_connect::Supervisor;
use podperf_protocol::worker::{WorkerInfo, WorkerView};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// A change the engine needs to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A worker appeared, or a new instance of it (a different `started_at_ms`) replaced the old.
    Up(Box<WorkerInfo>),
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

    /// The live worker `name` refers to (see [`crate::resolve::resolve`]), without copying the
    /// whole view: an id is looked up directly, anything else scanned under the read lock.
    pub fn resolve(
        &self,
        name: &str,
        known: &[WorkerInfo],
    ) -> Result<WorkerView, podperf_protocol::api::ApiError> {
        let map = self.inner.read().unwrap();
        if let Some(v) = map.get(name) {
            return Ok(v.clone());
        }
        let views: Vec<&WorkerView> = map.values().collect();
        crate::resolve::resolve(name, &views, known).cloned()
    }

    /// All live workers, ordered by node then pod name.
    pub fn snapshot(&self) -> Vec<WorkerView> {
        let mut v: Vec<WorkerView> = self.inner.read().unwrap().values().cloned().collect();
        v.sort_by(|a, b| {
            (&a.info.node_name, &a.info.pod_name).cmp(&(&b.info.node_name, &b.info.pod_name))
        });
        v
    }

    /// Keeps the workers `keep` approves of; returns the ids removed.
    fn retain(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut map = self.inner.write().unwrap();
        let gone: Vec<String> = map.keys().filter(|id| !keep(id)).cloned().collect();
        for id in &gone {
            map.remove(id);
        }
        gone
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
                let view = WorkerView {
                    info: info.clone(),
                    last_seen_at_ms,
                };
                let old = map.insert(entry.key.clone(), view);
                let new = old.is_none_or(|o| o.info.started_at_ms != info.started_at_ms);
                new.then_some(MemberEvent::Up(Box::new(info)))
            }
            Operation::Delete | Operation::Purge => map
                .remove(&entry.key)
                .map(|_| MemberEvent::Gone(entry.key.clone())),
        }
    }
}

/// Starts watching, as the task `membership` of `tasks`; returns once the current state has been
/// loaded (so callers can trust the view). Each `resync` notification (the client reconnected: the
/// server may have restarted and lost a memory bucket) watches again from the current state;
/// workers not seen again within `ttl` of that are gone.
pub async fn start(
    tasks: &mut Supervisor,
    store: kv::Store,
    members: Members,
    events: mpsc::UnboundedSender<MemberEvent>,
    ttl: Duration,
    resync: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), kv::WatchError> {
    let first = store.watch_with_history(">").await?;
    let (synced_tx, synced_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = Watcher {
        store,
        members,
        events,
        ttl,
        synced: Some(synced_tx),
    };
    tasks.spawn("membership", watcher.run(first, resync, shutdown));
    // The view is usable without the initial sync (e.g. an empty bucket sends nothing).
    let _ = tokio::time::timeout(Duration::from_secs(2), synced_rx).await;
    Ok(())
}

enum Ended {
    Shutdown,
    Resync,
    Closed,
}

struct Watcher {
    store: kv::Store,
    members: Members,
    events: mpsc::UnboundedSender<MemberEvent>,
    ttl: Duration,
    synced: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Watcher {
    /// Follows the bucket until `shutdown`, watching again whenever a watch ends or a resync is
    /// asked for.
    async fn run(mut self, first: kv::Watch, resync: Arc<Notify>, shutdown: CancellationToken) {
        let mut watch = Some(first);
        let mut reconcile_after = None;
        loop {
            let w = match watch.take() {
                Some(w) => w,
                None => match self.store.watch_with_history(">").await {
                    Ok(w) => w,
                    Err(err) => {
                        tracing::warn!(%err, "cannot watch the liveness bucket; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            _ = shutdown.cancelled() => return,
                        }
                    }
                },
            };
            match self.follow(w, reconcile_after, &resync, &shutdown).await {
                Ended::Shutdown => return,
                Ended::Resync => {
                    tracing::info!("re-reading the liveness bucket");
                    reconcile_after = Some(tokio::time::Instant::now() + self.ttl);
                }
                Ended::Closed => {
                    tracing::warn!("membership watch ended; watching again");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Applies entries until the watch ends, a resync is asked for, or shutdown. With
    /// `reconcile_at`, workers not seen by then — and not seen by the time the watch has caught
    /// up with the bucket, if that is later — are declared gone: a watch served while the
    /// bucket's replica catches up (a NATS node restarted) delivers late, and a live worker must
    /// not be dropped for it.
    async fn follow(
        &mut self,
        mut watch: kv::Watch,
        reconcile_at: Option<tokio::time::Instant>,
        resync: &Notify,
        shutdown: &CancellationToken,
    ) -> Ended {
        let mut seen: HashSet<String> = HashSet::new();
        let mut reconcile_at = reconcile_at;
        // The watch has delivered what the bucket held when it started.
        let mut caught_up = false;
        // The reconcile's time has come but the watch had not caught up yet.
        let mut reconcile_due = false;
        if self
            .store
            .status()
            .await
            .map(|s| s.values() == 0)
            .unwrap_or(false)
        {
            self.mark_synced();
            caught_up = true;
        }
        loop {
            let deadline = reconcile_at
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let next = tokio::select! {
                n = watch.next() => n,
                _ = tokio::time::sleep_until(deadline), if reconcile_at.is_some() => {
                    reconcile_at = None;
                    if caught_up {
                        self.reconcile(&seen);
                    } else {
                        reconcile_due = true;
                    }
                    continue;
                }
                _ = resync.notified() => return Ended::Resync,
                _ = shutdown.cancelled() => return Ended::Shutdown,
            };
            match next {
                Some(Ok(entry)) => {
                    if entry.operation == Operation::Put {
                        seen.insert(entry.key.clone());
                    }
                    if let Some(ev) = self.members.apply(&entry) {
                        log_event(&ev);
                        let _ = self.events.send(ev);
                    }
                    if entry.delta == 0 || entry.seen_current {
                        self.mark_synced();
                        caught_up = true;
                        if std::mem::take(&mut reconcile_due) {
                            self.reconcile(&seen);
                        }
                    }
                }
                Some(Err(err)) => tracing::warn!(%err, "membership watch error"),
                None => return Ended::Closed,
            }
        }
    }

    fn mark_synced(&mut self) {
        if let Some(tx) = self.synced.take() {
            let _ = tx.send(());
        }
    }

    /// Workers in the view that were not seen since the resync are gone.
    fn reconcile(&self, seen: &HashSet<String>) {
        for id in self.members.retain(|id| seen.contains(id)) {
            let ev = MemberEvent::Gone(id);
            log_event(&ev);
            let _ = self.events.send(ev);
        }
    }
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

//! The leader lease: one key ([`LEADER_KEY`]) in the dispatchers bucket, whose `max_age` is the
//! leader TTL. A replica takes it with create-if-absent, renews it with the revision it last saw
//! (a compare-and-set: any other write in between makes the renewal fail), and loses it when a
//! renewal fails or none succeeded for a whole TTL. A replica shutting down deletes it (expecting
//! its own revision), so a standby takes over at once instead of after the TTL.
//!
//! Each replica also keeps `replica.<id>` there (its [`DispatcherInfo`], refreshed with every
//! renewal or poll) for `podperf status`.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use podperf_protocol::names::{LEADER_KEY, REPLICA_KEY_PREFIX};
use podperf_protocol::status::{DispatcherInfo, Role};

/// Who this replica is (advertised in the bucket).
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub host: String,
    pub pid: u32,
}

impl Identity {
    /// A fresh id (random hex), the pod name (`POD_NAME`) or host name, the pid.
    pub fn new() -> Identity {
        let hex = uuid::Uuid::new_v4().simple().to_string();
        let host = std::env::var("POD_NAME")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Identity {
            id: hex[..12].to_string(),
            host,
            pid: std::process::id(),
        }
    }

    pub fn info(&self, role: Role, since_ms: u64, epoch: Option<u64>) -> DispatcherInfo {
        DispatcherInfo {
            dispatcher_id: self.id.clone(),
            host: self.host.clone(),
            pid: self.pid,
            role,
            since_ms,
            version: env!("CARGO_PKG_VERSION").to_string(),
            epoch,
        }
    }

    fn replica_key(&self) -> String {
        format!("{REPLICA_KEY_PREFIX}{}", self.id)
    }
}

impl Default for Identity {
    fn default() -> Self {
        Identity::new()
    }
}

fn encode(info: &DispatcherInfo) -> bytes::Bytes {
    serde_json::to_vec(info).expect("info serialises").into()
}

/// A held lease.
pub struct Lease {
    kv: kv::Store,
    revision: u64,
    ttl: Duration,
    /// When the last successful write (take or renewal) was sent: the lease is ours until
    /// `renewed + ttl` at the very latest.
    renewed: Instant,
}

/// Why a renewal did not keep the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    /// Someone else wrote the key (or it expired and was taken).
    Taken,
    /// No renewal succeeded for a whole TTL (NATS unreachable, or the process was paused).
    Expired,
}

/// Takes the lease if nobody holds it; `Ok(None)` when somebody does.
pub async fn try_acquire(
    kv: &kv::Store,
    info: &DispatcherInfo,
    ttl: Duration,
) -> Result<Option<Lease>, kv::CreateError> {
    let sent = Instant::now();
    match kv.create(LEADER_KEY, encode(info)).await {
        Ok(revision) => Ok(Some(Lease {
            kv: kv.clone(),
            revision,
            ttl,
            renewed: sent,
        })),
        Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e),
    }
}

/// The current holder, if any (for logs and status).
pub async fn holder(kv: &kv::Store) -> Option<DispatcherInfo> {
    let entry = kv.entry(LEADER_KEY).await.ok()??;
    if entry.operation != kv::Operation::Put {
        return None;
    }
    serde_json::from_slice(&entry.value).ok()
}

/// Refreshes this replica's own key.
pub async fn advertise(kv: &kv::Store, me: &Identity, info: &DispatcherInfo) {
    if let Err(err) = kv.put(me.replica_key(), encode(info)).await {
        tracing::debug!(%err, "could not advertise this replica");
    }
}

/// Removes this replica's own key (shutting down).
pub async fn withdraw(kv: &kv::Store, me: &Identity) {
    let _ = kv.delete(me.replica_key()).await;
}

impl Lease {
    /// Renews with the revision last seen (and the info to advertise). Tried even when a TTL
    /// has passed: if the key still holds that revision nobody else took it (an expired key is
    /// gone, so the compare-and-set fails).
    pub async fn renew(&mut self, info: &DispatcherInfo) -> Result<(), Lost> {
        let sent = Instant::now();
        match self
            .kv
            .update(LEADER_KEY, encode(info), self.revision)
            .await
        {
            Ok(rev) => {
                self.revision = rev;
                self.renewed = sent;
                Ok(())
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Err(Lost::Taken),
            Err(err) => {
                tracing::warn!(%err, "cannot renew the leader lease; retrying");
                if self.renewed.elapsed() >= self.ttl {
                    Err(Lost::Expired)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether the lease may still be ours (no more than a TTL since the last renewal).
    pub fn valid(&self) -> bool {
        self.renewed.elapsed() < self.ttl
    }

    /// Gives the lease up (only if it is still ours), so a standby takes over at once.
    pub async fn release(self) {
        match self
            .kv
            .delete_expect_revision(LEADER_KEY, Some(self.revision))
            .await
        {
            Ok(()) => tracing::info!("released the leader lease"),
            Err(err) => tracing::warn!(%err, "could not release the leader lease"),
        }
    }
}

//! Leadership: every replica serves the API; the one holding the lease ([`crate::lease`]) also
//! runs the engine, ingest, and takes up jobs other replicas stored. A replica starts as a
//! standby, polls for the lease (every TTL/5), and on taking it:
//! 1. keeps renewing it (every TTL/3) in the background; losing it deposes this replica;
//! 2. takes a new fencing epoch in Redis (every state change it writes carries it);
//! 3. listens for jobs and cancels the standbys forward, then recovers the outstanding jobs
//!    as a restarted dispatcher does, and only then hands its engine to the API.
//!
//! A deposed leader stops its engine and ingest (whatever they still write is fenced) and is a
//! standby again; one shutting down releases the lease after its tasks stopped.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{kv, stream::Stream};
use async_nats::{Client, Subscriber};
use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use podperf_connect::{ErrorChain, Supervisor};
use podperf_protocol::api::JobIdRequest;
use podperf_protocol::names::{ADOPT_SUBJECT, CANCEL_SUBJECT};
use podperf_protocol::now_ms;
use podperf_protocol::status::{DispatcherInfo, Role};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::DispatcherConfig;
use crate::engine::{self, EngineHandle, Input};
use crate::lease::{self, Lease};
use crate::membership::Members;
use crate::store::Store;
use crate::{ingest, Error, STOP_WITHIN};

/// This replica's role as the API sees it: the engine while it leads, and what it advertises.
pub struct Leadership {
    engine: RwLock<Option<EngineHandle>>,
    info: RwLock<DispatcherInfo>,
}

impl Leadership {
    pub fn new(info: DispatcherInfo) -> Arc<Leadership> {
        Arc::new(Leadership {
            engine: RwLock::new(None),
            info: RwLock::new(info),
        })
    }

    /// The engine, while this replica leads.
    pub fn engine(&self) -> Option<EngineHandle> {
        self.engine.read().unwrap().clone()
    }

    pub fn info(&self) -> DispatcherInfo {
        self.info.read().unwrap().clone()
    }

    fn set(&self, info: DispatcherInfo, engine: Option<EngineHandle>) {
        *self.info.write().unwrap() = info;
        *self.engine.write().unwrap() = engine;
    }
}

/// What a leader term needs.
#[derive(Clone)]
pub struct Ctx {
    pub client: Client,
    pub store: Store,
    pub members: Members,
    pub cfg: DispatcherConfig,
    pub results: Stream,
    pub bucket: kv::Store,
    pub repull: Arc<Notify>,
    pub leadership: Arc<Leadership>,
}

enum End {
    Stopped,
    Deposed,
}

/// Standby until the lease is free, leader until deposed, and so on until `stop`. `ready` is
/// told once this replica is either a standby that found the lease taken or a leader with its
/// engine running (the API is served from then on).
pub async fn elect(
    ctx: Ctx,
    ready: oneshot::Sender<()>,
    stop: CancellationToken,
) -> crate::Result<()> {
    let mut ready = Some(ready);
    let me = &ctx.cfg.identity;
    let ttl = ctx.cfg.leader_ttl;
    loop {
        let standby = me.info(Role::Standby, now_ms(), None);
        ctx.leadership.set(standby, None);
        let lease = loop {
            lease::advertise(&ctx.bucket, me, &ctx.leadership.info()).await;
            let candidate = me.info(Role::Leader, now_ms(), None);
            match lease::try_acquire(&ctx.bucket, &candidate, ttl).await {
                Ok(Some(lease)) => break lease,
                Ok(None) => {}
                Err(err) => tracing::warn!(err = %ErrorChain(&err), "cannot try the leader lease"),
            }
            if let Some(r) = ready.take() {
                let holder = lease::holder(&ctx.bucket).await;
                let leader = holder.map(|h| format!("{} ({})", h.dispatcher_id, h.host));
                tracing::info!(leader = leader.as_deref().unwrap_or("?"), "standing by");
                let _ = r.send(());
            }
            tokio::select! {
                _ = tokio::time::sleep(ttl / 5) => {}
                _ = stop.cancelled() => {
                    lease::withdraw(&ctx.bucket, me).await;
                    return Ok(());
                }
            }
        };
        tracing::info!(dispatcher_id = %me.id, "took the leader lease");
        match lead(&ctx, lease, &mut ready, &stop).await? {
            End::Stopped => {
                lease::withdraw(&ctx.bucket, me).await;
                return Ok(());
            }
            End::Deposed => tracing::warn!("lost the leader lease: standing by again"),
        }
    }
}

/// One leader term.
async fn lead(
    ctx: &Ctx,
    lease: Lease,
    ready: &mut Option<oneshot::Sender<()>>,
    stop: &CancellationToken,
) -> crate::Result<End> {
    let since = now_ms();
    ctx.leadership
        .set(ctx.cfg.identity.info(Role::Leader, since, None), None);
    let deposed = CancellationToken::new();
    let release = CancellationToken::new();
    let keeper = tokio::spawn(keep(lease, ctx.clone(), deposed.clone(), release.clone()));
    let outcome = term(ctx, since, ready, &deposed, stop).await;
    ctx.leadership
        .set(ctx.cfg.identity.info(Role::Standby, now_ms(), None), None);
    release.cancel();
    let _ = keeper.await;
    outcome?;
    Ok(if stop.is_cancelled() {
        End::Stopped
    } else {
        End::Deposed
    })
}

/// The leader's work, until deposed or stopped (then its tasks are stopped before it returns).
async fn term(
    ctx: &Ctx,
    since: u64,
    ready: &mut Option<oneshot::Sender<()>>,
    deposed: &CancellationToken,
    stop: &CancellationToken,
) -> crate::Result<()> {
    let ended = || async {
        tokio::select! {
            _ = deposed.cancelled() => {}
            _ = stop.cancelled() => {}
        }
    };
    let epoch = (|| ctx.store.next_epoch())
        .retry(backoff())
        .notify(|err, _| tracing::warn!(%err, "cannot take a fencing epoch; retrying"));
    let epoch = tokio::select! {
        e = epoch => e?,
        _ = ended() => return Ok(()),
    };
    let info = ctx.cfg.identity.info(Role::Leader, since, Some(epoch));
    ctx.leadership.set(info, None);
    tracing::info!(epoch, "leading");
    let store = ctx.store.fenced(epoch);
    let adopt = subscribe(&ctx.client, ADOPT_SUBJECT).await?;
    let cancel = subscribe(&ctx.client, CANCEL_SUBJECT).await?;

    let (mut engine, handle) = engine::Engine::new(
        ctx.client.clone(),
        ctx.results.clone(),
        store.clone(),
        ctx.members.clone(),
        ctx.cfg.clone(),
    );
    let resumed = tokio::select! {
        r = engine.recover() => r?,
        _ = ended() => return Ok(()),
    };
    if resumed > 0 {
        tracing::info!(resumed, "resumed outstanding jobs");
    }
    // The durable consumer may be unavailable for a while (a JetStream cluster electing a new
    // stream leader after a node died): retried until this term ends, never ending the process.
    let consumer = (|| ingest::consumer(&ctx.results))
        .retry(backoff())
        .notify(|err, _| tracing::warn!(%err, "cannot create the results consumer; retrying"));
    tokio::select! {
        c = consumer => c.map_err(|e| Error::Consumer(e.into()))?,
        _ = ended() => return Ok(()),
    };

    let halt = CancellationToken::new();
    let mut tasks = Supervisor::new();
    tasks.spawn("engine", engine.run(halt.clone()));
    tasks.spawn(
        "ingest",
        ingest::run(
            ctx.client.clone(),
            ctx.results.clone(),
            store.clone(),
            handle.sender(),
            ctx.repull.clone(),
            halt.clone(),
        ),
    );
    let rescan_every =
        (ctx.cfg.leader_ttl * 2).clamp(Duration::from_secs(1), Duration::from_secs(10));
    tasks.spawn(
        "adopt",
        adopt_jobs(
            adopt,
            ctx.client.clone(),
            store.clone(),
            handle.sender(),
            rescan_every,
            halt.clone(),
        ),
    );
    tasks.spawn(
        "forwarded-cancels",
        serve_cancels(cancel, ctx.client.clone(), handle.clone(), halt.clone()),
    );
    tasks.spawn(
        "trim",
        trim(store.clone(), ctx.cfg.store_max_jobs, halt.clone()),
    );
    ctx.leadership.set(ctx.leadership.info(), Some(handle));
    if let Some(r) = ready.take() {
        let _ = r.send(());
    }
    let outcome = tasks.watch(ended()).await;
    ctx.leadership
        .set(ctx.cfg.identity.info(Role::Standby, now_ms(), None), None);
    halt.cancel();
    let joined = tasks.join(STOP_WITHIN).await;
    Ok(outcome.and(joined)?)
}

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .without_max_times()
}

async fn subscribe(client: &Client, subject: &'static str) -> crate::Result<Subscriber> {
    let sub = client
        .subscribe(subject)
        .await
        .map_err(|e| Error::Subscribe(subject, e))?;
    Ok(sub)
}

/// Renews the lease every TTL/3 (advertising the current info) until `release` (then gives it
/// up) or until it is lost (then cancels `deposed`).
async fn keep(mut lease: Lease, ctx: Ctx, deposed: CancellationToken, release: CancellationToken) {
    let every = ctx.cfg.leader_ttl / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = release.cancelled() => {
                if lease.valid() {
                    lease.release().await;
                }
                return;
            }
        }
        let info = ctx.leadership.info();
        if let Err(lost) = lease.renew(&info).await {
            tracing::warn!(?lost, "the leader lease is lost");
            deposed.cancel();
            return;
        }
        lease::advertise(&ctx.bucket, &ctx.cfg.identity, &info).await;
    }
}

/// Takes up jobs the standbys stored (they send the ids) and, every `rescan_every`, any job in
/// the store's active set the engine does not hold (stored while no leader listened).
async fn adopt_jobs(
    mut requests: Subscriber,
    client: Client,
    store: Store,
    engine: mpsc::UnboundedSender<Input>,
    rescan_every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(rescan_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: recovery just read the store
    loop {
        tokio::select! {
            msg = requests.next() => {
                let Some(msg) = msg else { return };
                let ids: Vec<Uuid> = serde_json::from_slice(&msg.payload).unwrap_or_default();
                let ok = adopt(&store, &engine, ids).await;
                if let (Some(reply), true) = (msg.reply, ok) {
                    let _ = client.publish(reply, "true".into()).await;
                }
            }
            _ = tick.tick() => {
                if let Err(err) = rescan(&store, &engine).await {
                    tracing::warn!(%err, "cannot rescan the outstanding jobs");
                }
            }
            _ = stop.cancelled() => return,
        }
    }
}

/// Loads the jobs and hands those not terminal to the engine; false if the store failed.
async fn adopt(store: &Store, engine: &mpsc::UnboundedSender<Input>, ids: Vec<Uuid>) -> bool {
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        match store.get_new_job(id).await {
            Ok(Some((job, state))) if !state.is_terminal() => jobs.push((job, state)),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(%err, "cannot read a job to take up");
                return false;
            }
        }
    }
    if !jobs.is_empty() {
        let _ = engine.send(Input::Adopt(jobs));
    }
    true
}

async fn rescan(
    store: &Store,
    engine: &mpsc::UnboundedSender<Input>,
) -> Result<(), crate::store::StoreError> {
    let active = store.active().await?;
    let (tx, rx) = oneshot::channel();
    if engine.send(Input::Known(tx)).is_err() {
        return Ok(());
    }
    let Ok(known) = rx.await else { return Ok(()) };
    let missing: Vec<Uuid> = active
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !missing.is_empty() {
        adopt(store, engine, missing).await;
    }
    Ok(())
}

/// Keeps the store within its budget: every second, the oldest terminal jobs beyond
/// `max_terminal` are trimmed (see `Store::trim_to`).
async fn trim(store: Store, max_terminal: u64, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => return,
        }
        match store.trim_to(max_terminal).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "trimmed the oldest terminal jobs"),
            Err(err) => tracing::warn!(%err, "cannot trim the job store"),
        }
    }
}

/// Cancels the standbys forwarded; answers `true` when the job was outstanding (once stored).
async fn serve_cancels(
    mut requests: Subscriber,
    client: Client,
    engine: EngineHandle,
    stop: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            m = requests.next() => match m { Some(m) => m, None => return },
            _ = stop.cancelled() => return,
        };
        let Ok(req) = serde_json::from_slice::<JobIdRequest>(&msg.payload) else {
            continue;
        };
        let (client, engine) = (client.clone(), engine.clone());
        tokio::spawn(async move {
            let cancelled = engine.cancel(req.job_id).await;
            if let Some(reply) = msg.reply {
                let _ = client.publish(reply, cancelled.to_string().into()).await;
            }
        });
    }
}

//! The live-event hub: one task per process passes on the done notices (they also answer
//! `?wait=` requests; the metrics' subscription, [`crate::metrics::Watch::done`], is shared);
//! while some event stream is open, another follows the job events and results and a
//! third reads the workers and the runs every [`crate::WebConfig::poll_interval`] to tell joins,
//! leaves and run progress (NATS subscriptions through `podperf-client`). Every open stream
//! receives the hub's events from one broadcast channel and keeps those its filter wants: a
//! hundred streams cost one set of subscriptions, and none costs nothing — at 1,000 nodes a sweep
//! round's results are ≈ 200 MB that nobody need parse while no browser watches.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podperf_client::{Client, Live, LiveFilter};
use podperf_protocol::api::JobRecord;
use podperf_protocol::run::{ListRunsRequest, RunProgress};
use podperf_protocol::worker::WorkerView;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Events a slow stream may fall behind by before it is told it missed some (`lagged`).
const BUFFER: usize = 4096;
/// Runs whose progress is followed (the newest).
const RUNS_FOLLOWED: u32 = 20;
/// How long opening a stream waits for the job feed's subscription (NATS down: the stream opens
/// anyway and gets the feed's events once it is back).
const FEED_WAIT: Duration = Duration::from_secs(5);
/// How often the job feed checks whether any stream is still open.
const FEED_CHECK: Duration = Duration::from_secs(1);

/// One event as the streams send it: its SSE name, its JSON, and what it concerns.
#[derive(Debug, Clone, PartialEq)]
pub struct HubEvent {
    /// `job_event`, `job_result`, `job_done`, `worker_joined`, `worker_left`, `run_progress`.
    pub name: &'static str,
    pub data: String,
    pub job_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
}

impl HubEvent {
    fn new(name: &'static str, data: &impl Serialize) -> Self {
        HubEvent {
            name,
            data: serde_json::to_string(data).expect("events serialise"),
            job_id: None,
            run_id: None,
        }
    }
}

/// The sending side, cheap to clone; the task ends on the shutdown token.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<HubEvent>>,
    /// The `job_done` events alone, for `?wait=` requests (which do not count as open streams:
    /// they do not start the workers and runs polls).
    done: broadcast::Sender<Arc<HubEvent>>,
    /// Whether the done notices are subscribed (by the metrics' follower).
    following_done: Arc<crate::metrics::Following>,
    /// Whether the job feed (events, results) is subscribed.
    following: Arc<watch::Sender<bool>>,
    /// Wakes the job feed's task when a stream opens.
    wanted: Arc<Notify>,
}

impl Hub {
    /// Spawns the hub's tasks; the done notices come from `watch`'s subscription.
    pub fn start(
        client: Client,
        poll: Duration,
        watch: &crate::metrics::Watch,
        shutdown: CancellationToken,
    ) -> Hub {
        let (tx, _) = broadcast::channel(BUFFER);
        let (done, _) = broadcast::channel(BUFFER);
        let notices = watch.done.subscribe();
        let hub = Hub {
            tx,
            done,
            following_done: watch.following.clone(),
            following: Arc::new(watch::Sender::new(false)),
            wanted: Arc::new(Notify::new()),
        };
        tokio::spawn(hub.clone().poll(client.clone(), poll, shutdown.clone()));
        tokio::spawn(hub.clone().feed(client.clone(), shutdown.clone()));
        tokio::spawn(hub.clone().run(notices, shutdown));
        hub
    }

    /// Events from now on: returns once the job feed is subscribed (at most [`FEED_WAIT`]).
    pub async fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        let rx = self.tx.subscribe();
        self.wanted.notify_one();
        let mut following = self.following.subscribe();
        let _ = tokio::time::timeout(FEED_WAIT, following.wait_for(|f| *f)).await;
        rx
    }

    /// The `job_done` events (each data a [`podperf_protocol::api::JobRecord`]) from now on:
    /// taken before a submit, no job of it can end unseen. `None` while the hub is not following
    /// the feed (starting, or subscribing again after the connection was lost).
    pub fn done_events(&self) -> Option<broadcast::Receiver<Arc<HubEvent>>> {
        let rx = self.done.subscribe();
        self.is_live().then_some(rx)
    }

    /// Whether the done notices are followed (the metrics' subscription is in place): only then
    /// can a `?wait=` request count on them.
    pub fn is_live(&self) -> bool {
        self.following_done.done.load(Ordering::Acquire)
    }

    fn send(&self, ev: HubEvent) {
        let _ = self.tx.send(Arc::new(ev)); // no stream open: nobody to tell
    }

    /// Passes on the done notices; each becomes an event only when a stream or a request
    /// listens.
    async fn run(
        self,
        mut notices: broadcast::Receiver<Arc<JobRecord>>,
        shutdown: CancellationToken,
    ) {
        loop {
            let rec = tokio::select! {
                _ = shutdown.cancelled() => return,
                rec = notices.recv() => match rec {
                    Ok(rec) => rec,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "the live-event hub fell behind the done notices");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if self.done.receiver_count() == 0 && self.tx.receiver_count() == 0 {
                continue; // nobody to tell: not serialised
            }
            let mut ev = HubEvent::new("job_done", &*rec);
            ev.job_id = Some(rec.job_id);
            let ev = Arc::new(ev);
            let _ = self.done.send(ev.clone()); // no request waiting
            let _ = self.tx.send(ev);
        }
    }

    /// Follows the job events and results while some stream is open, and only then.
    async fn feed(self, client: Client, shutdown: CancellationToken) {
        loop {
            while self.tx.receiver_count() == 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.wanted.notified() => {}
                }
            }
            let live = tokio::select! {
                _ = shutdown.cancelled() => return,
                l = client.live(LiveFilter::All) => l,
            };
            let mut live = match live {
                Ok(live) => live,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow the job feed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            self.following.send_replace(true);
            let mut check = tokio::time::interval(FEED_CHECK);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    item = live.next() => match item {
                        Some(item) => self.send_live(item),
                        None => break, // subscribe again (or wait for a stream)
                    },
                    _ = check.tick() => if self.tx.receiver_count() == 0 {
                        // The last stream closed. Marked unfollowed before the last look: a
                        // stream opening meanwhile is seen here, or waits for the next
                        // subscription (it never takes this one, about to go, for live).
                        self.following.send_replace(false);
                        if self.tx.receiver_count() == 0 {
                            break; // unsubscribe
                        }
                        self.following.send_replace(true);
                    },
                }
            }
            self.following.send_replace(false);
        }
    }

    /// While some event stream is open, reads the workers and the runs every `poll` to tell
    /// joins, leaves and run progress. A task of its own: a slow read (1,000 workers) does not
    /// hold up the job feed, nor the `?wait=` requests waiting for done notices.
    async fn poll(self, client: Client, poll: Duration, shutdown: CancellationToken) {
        let mut members = Members::default();
        let mut runs = Runs::default();
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.tx.receiver_count() == 0 {
                members = Members::default();
                runs = Runs::default();
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = async {
                    members.poll(&client, &self).await;
                    runs.poll(&client, &self).await;
                } => {}
            }
        }
    }

    fn send_live(&self, item: Live) {
        let ev = match item {
            Live::Event(e) => {
                let mut ev = HubEvent::new("job_event", &e);
                ev.job_id = Some(e.job_id);
                ev
            }
            Live::Result(o) => {
                let mut ev = HubEvent::new("job_result", &o);
                ev.job_id = Some(o.job_id);
                ev
            }
            Live::Malformed { subject, .. } => {
                return tracing::debug!(%subject, "malformed message on the job feed");
            }
        };
        self.send(ev);
    }
}

/// The workers seen at the last poll (none before the first: no joins are told then).
#[derive(Default)]
struct Members(Option<HashMap<String, WorkerView>>);

impl Members {
    async fn poll(&mut self, client: &Client, hub: &Hub) {
        let Ok(now) = client.workers().await else {
            return; // the dispatcher did not answer: tell nothing rather than guess
        };
        let now: HashMap<String, WorkerView> = now
            .into_iter()
            .map(|w| (w.info.worker_id.clone(), w))
            .collect();
        if let Some(before) = &self.0 {
            for (id, w) in &now {
                if !before.contains_key(id) {
                    hub.send(HubEvent::new("worker_joined", w));
                }
            }
            for (id, w) in before {
                if !now.contains_key(id) {
                    hub.send(HubEvent::new("worker_left", w));
                }
            }
        }
        self.0 = Some(now);
    }
}

/// The newest runs' progress at the last poll.
#[derive(Default)]
struct Runs(Option<HashMap<Uuid, RunProgress>>);

impl Runs {
    async fn poll(&mut self, client: &Client, hub: &Hub) {
        let req = ListRunsRequest {
            limit: Some(RUNS_FOLLOWED),
        };
        let Ok(reply) = client.runs(&req).await else {
            return;
        };
        let before = self.0.get_or_insert_with(HashMap::new);
        for p in reply.runs {
            if before.get(&p.run_id) != Some(&p) {
                let mut ev = HubEvent::new("run_progress", &p);
                ev.run_id = Some(p.run_id);
                hub.send(ev);
                before.insert(p.run_id, p);
            }
        }
    }
}

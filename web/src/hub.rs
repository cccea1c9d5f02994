//! The live-event hub: one task per process follows the job events, results and done notices
//! (NATS subscriptions through `podperf-client`; the done notices also answer `?wait=` requests)
//! and another, while some event stream is open, reads the workers and the runs every
//! [`crate::WebConfig::poll_interval`] to tell joins, leaves and run progress. Every open stream
//! receives the hub's events from one broadcast channel and keeps those its filter wants: a
//! hundred streams cost one set of subscriptions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podperf_client::{Client, Live, LiveFilter};
use podperf_protocol::run::{ListRunsRequest, RunProgress};
use podperf_protocol::worker::WorkerView;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Events a slow stream may fall behind by before it is told it missed some (`lagged`).
const BUFFER: usize = 4096;
/// Runs whose progress is followed (the newest).
const RUNS_FOLLOWED: u32 = 20;

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
    live: Arc<AtomicBool>,
}

impl Hub {
    /// Spawns the hub's task.
    pub fn start(client: Client, poll: Duration, shutdown: CancellationToken) -> Hub {
        let (tx, _) = broadcast::channel(BUFFER);
        let (done, _) = broadcast::channel(BUFFER);
        let hub = Hub {
            tx,
            done,
            live: Arc::new(AtomicBool::new(false)),
        };
        tokio::spawn(hub.clone().poll(client.clone(), poll, shutdown.clone()));
        tokio::spawn(hub.clone().run(client, shutdown));
        hub
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubEvent>> {
        self.tx.subscribe()
    }

    /// The `job_done` events (each data a [`podperf_protocol::api::JobRecord`]) from now on:
    /// taken before a submit, no job of it can end unseen. `None` while the hub is not following
    /// the feed (starting, or subscribing again after the connection was lost).
    pub fn done_events(&self) -> Option<broadcast::Receiver<Arc<HubEvent>>> {
        let rx = self.done.subscribe();
        self.is_live().then_some(rx)
    }

    /// Whether the hub follows the job feed (its subscriptions are in place).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    fn send(&self, ev: HubEvent) {
        let _ = self.tx.send(Arc::new(ev)); // no stream open: nobody to tell
    }

    /// Follows the job feed and the done notices.
    async fn run(self, client: Client, shutdown: CancellationToken) {
        'subscribe: loop {
            self.live.store(false, Ordering::Relaxed);
            let feeds = tokio::select! {
                _ = shutdown.cancelled() => return,
                f = subscribe(&client) => f,
            };
            let Some((mut live, mut done)) = feeds else {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'subscribe,
                }
            };
            self.live.store(true, Ordering::Relaxed);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    item = live.next() => match item {
                        Some(item) => self.send_live(item),
                        None => continue 'subscribe,
                    },
                    rec = done.next() => match rec {
                        Some(rec) => {
                            let mut ev = HubEvent::new("job_done", &rec);
                            ev.job_id = Some(rec.job_id);
                            let ev = Arc::new(ev);
                            let _ = self.done.send(ev.clone()); // no request waiting
                            let _ = self.tx.send(ev);
                        }
                        None => continue 'subscribe,
                    },
                }
            }
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

type Feeds = (
    podperf_client::LiveStream,
    futures::stream::BoxStream<'static, podperf_protocol::api::JobRecord>,
);

async fn subscribe(client: &Client) -> Option<Feeds> {
    let live = client.live(LiveFilter::All).await;
    let done = client.done_notices().await;
    match (live, done) {
        (Ok(live), Ok(done)) => Some((live, done.boxed())),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "cannot follow the job feed; retrying");
            None
        }
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

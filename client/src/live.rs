//! The live feed: job events and terminal results as workers publish them (what `podperf watch`
//! shows), typed.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{select, Select};
use futures::Stream;
use podperf_protocol::names::{event_subject, result_subject, EVENTS_PREFIX, RESULTS_PREFIX};
use podperf_protocol::outcome::{JobEvent, JobOutcome};
use uuid::Uuid;

use crate::error::{Error, Result};

/// One message of the live feed.
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    /// A life-cycle event (e.g. started).
    Event(JobEvent),
    /// A terminal result.
    Result(Box<JobOutcome>),
    /// A message on the feed's subjects that is not of the expected shape (kept, not dropped).
    Malformed { subject: String, payload: Vec<u8> },
}

/// Which jobs to follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LiveFilter {
    #[default]
    All,
    Job(Uuid),
}

/// A stream of [`Live`] messages; subscribed (and flushed) when [`crate::Client::live`] returns,
/// so nothing published after that is missed.
pub struct LiveStream {
    inner: Select<async_nats::Subscriber, async_nats::Subscriber>,
}

impl LiveStream {
    pub(crate) async fn subscribe(nats: &async_nats::Client, filter: LiveFilter) -> Result<Self> {
        let (events, results) = match filter {
            LiveFilter::All => (format!("{EVENTS_PREFIX}>"), format!("{RESULTS_PREFIX}>")),
            LiveFilter::Job(id) => (event_subject(id), result_subject(id)),
        };
        let events = nats
            .subscribe(events.clone())
            .await
            .map_err(|e| Error::nats(format!("subscribe {events}"), e))?;
        let results = nats
            .subscribe(results.clone())
            .await
            .map_err(|e| Error::nats(format!("subscribe {results}"), e))?;
        nats.flush().await.map_err(|e| Error::nats("flush", e))?;
        Ok(LiveStream {
            inner: select(events, results),
        })
    }
}

fn decode(msg: async_nats::Message) -> Live {
    let subject = msg.subject.to_string();
    let typed = if subject.starts_with(EVENTS_PREFIX) {
        serde_json::from_slice(&msg.payload).map(Live::Event).ok()
    } else {
        serde_json::from_slice(&msg.payload)
            .map(|o| Live::Result(Box::new(o)))
            .ok()
    };
    typed.unwrap_or_else(|| Live::Malformed {
        subject,
        payload: msg.payload.to_vec(),
    })
}

impl Stream for LiveStream {
    type Item = Live;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Live>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|m| m.map(decode))
    }
}

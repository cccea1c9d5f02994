//! `GET /api/v2/events`: Server-Sent Events from the hub, all of them or one job's (`?job=ID`:
//! first its record as `job`, then its `job_event`, `job_result`, `job_done`) or one run's
//! (`?run=ID`: `run_progress`, the first at once). Streams are capped
//! ([`crate::WebConfig::max_event_streams`]: one more is 429 `busy`) and all end when the server
//! shuts down (axum's graceful shutdown would otherwise wait for them for ever).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::error::{AppError, Result};
use crate::extract::Params;
use crate::hub::HubEvent;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub job: Option<Uuid>,
    pub run: Option<Uuid>,
}

#[derive(Debug, Clone, Copy)]
enum Filter {
    All,
    Job(Uuid),
    Run(Uuid),
}

impl Filter {
    fn wants(self, ev: &HubEvent) -> bool {
        match self {
            Filter::All => true,
            Filter::Job(id) => ev.job_id == Some(id),
            Filter::Run(id) => ev.run_id == Some(id),
        }
    }
}

#[utoipa::path(get, path = "/api/v2/events", operation_id = "events", tag = "v2",
    params(("job" = Option<uuid::Uuid>, Query, description = "follow one job (first event: `job`, its record)"),
           ("run" = Option<uuid::Uuid>, Query, description = "follow one run (first event: `run_progress`)")),
    responses((status = 200, content_type = "text/event-stream",
               description = "events `job_event`, `job_result`, `job_done`, `worker_joined`, `worker_left`, `run_progress`, `lagged`"),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 429, description = "too many event streams open", body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn events(
    State(s): State<AppState>,
    Params(q): Params<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let filter = match (q.job, q.run) {
        (Some(_), Some(_)) => {
            return Err(AppError::invalid_param(
                "run",
                "give `job` or `run`, not both",
            ));
        }
        (Some(id), None) => Filter::Job(id),
        (None, Some(id)) => Filter::Run(id),
        (None, None) => Filter::All,
    };
    let permit = s.streams.clone().try_acquire_owned().map_err(|_| {
        AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            format!(
                "{} event streams are open, the most this server serves; try again later",
                s.config.max_event_streams
            ),
        )
    })?;
    // Subscribed before the first snapshot is read: nothing after it is missed.
    let rx = s.hub.subscribe().await;
    let first = match filter {
        Filter::All => Event::default().comment("connected"),
        Filter::Job(id) => json_event("job", &s.client.get(id).await?),
        Filter::Run(id) => json_event("run_progress", &s.client.run(id).await?.progress),
    };
    let live = stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) if filter.wants(&ev) => return Some((to_event(&ev), rx)),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    let ev = Event::default()
                        .event("lagged")
                        .data(format!("{{\"missed\":{n}}}"));
                    return Some((ev, rx));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let stream = stream::once(async { first })
        .chain(live)
        .take_until(s.shutdown.clone().cancelled_owned())
        .map(move |ev| {
            let _held = &permit; // released when the stream is dropped
            Ok(ev)
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).expect("events serialise"))
}

fn to_event(ev: &Arc<HubEvent>) -> Event {
    Event::default().event(ev.name).data(&ev.data)
}

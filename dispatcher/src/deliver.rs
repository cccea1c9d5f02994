//! Delivers one job to its worker by request/reply, retrying with the same id (the worker runs an
//! id once) on "no responders", timeouts and `at_capacity`, until the job's deadline.

use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use podperf_protocol::command::{JobAssignment, RefusalReason, WorkerCommand, WorkerReply};
use podperf_protocol::now_ms;
use tokio_util::sync::CancellationToken;

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Accepted {
        attempts: u32,
    },
    Refused {
        reason: RefusalReason,
        message: String,
    },
    Undeliverable {
        message: String,
    },
    /// The job ended meanwhile (cancelled, worker lost); nobody waits for this delivery.
    Aborted,
}

pub async fn deliver(
    client: &Client,
    subject: String,
    job: &JobAssignment,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Delivery {
    let cmd = WorkerCommand::Run(job.clone());
    let payload: bytes::Bytes = serde_json::to_vec(&cmd).expect("command serialises").into();
    let mut backoff = Duration::from_millis(50);
    let mut attempts = 0;
    let mut last = String::from("no attempt made");
    loop {
        if cancel.is_cancelled() {
            return Delivery::Aborted;
        }
        if now_ms() >= job.deadline_at_ms {
            return Delivery::Undeliverable { message: last };
        }
        attempts += 1;
        let request = client.request(subject.clone(), payload.clone());
        let answer = tokio::select! {
            a = tokio::time::timeout(timeout, request) => a,
            _ = cancel.cancelled() => return Delivery::Aborted,
        };
        match answer {
            Ok(Ok(msg)) => match serde_json::from_slice::<WorkerReply>(&msg.payload) {
                Ok(WorkerReply::Accepted { job_id, .. }) if job_id == job.job_id => {
                    return Delivery::Accepted { attempts }
                }
                Ok(WorkerReply::Refused {
                    reason, message, ..
                }) if !reason.is_transient() => return Delivery::Refused { reason, message },
                Ok(WorkerReply::Refused { message, .. }) => last = message,
                Ok(other) => last = format!("unexpected reply {other:?}"),
                Err(err) => last = format!("malformed reply: {err}"),
            },
            Ok(Err(err)) if err.kind() == RequestErrorKind::NoResponders => {
                last = "no responders: the worker is not subscribed".into()
            }
            Ok(Err(err)) => last = err.to_string(),
            Err(_) => last = format!("no answer within {timeout:?}"),
        }
        if attempts == 1 || attempts % 10 == 0 {
            tracing::warn!(job_id = %job.job_id, %subject, attempts, %last, "delivery failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return Delivery::Aborted,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

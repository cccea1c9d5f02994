//! The API's handle on the engine: room under the dispatcher's job limit, enqueue, cancel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::Input;
use crate::store::NewJob;

/// The API's handle on the engine.
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) tx: mpsc::UnboundedSender<Input>,
    pub(super) outstanding: Arc<AtomicUsize>,
}

/// Room for `n` jobs under the dispatcher's limit, taken before the batch is stored so concurrent
/// submits cannot overshoot it; given back on drop unless the jobs were enqueued.
pub struct Reservation {
    counter: Arc<AtomicUsize>,
    n: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.n, Ordering::Relaxed);
    }
}

impl EngineHandle {
    /// Reserves room for `n` more outstanding jobs, unless that would exceed `max`.
    pub fn reserve(&self, n: usize, max: usize) -> Option<Reservation> {
        self.outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(n).filter(|total| *total <= max)
            })
            .ok()
            .map(|_| Reservation {
                counter: self.outstanding.clone(),
                n,
            })
    }

    /// Hands stored jobs to the engine; their reserved room is now held until each ends.
    pub fn enqueue(&self, jobs: Vec<NewJob>, mut reservation: Reservation) {
        debug_assert_eq!(jobs.len(), reservation.n);
        reservation.n = 0; // the room now belongs to the jobs: the engine frees it as each ends
        let _ = self.tx.send(Input::Enqueue(jobs));
    }

    /// Cancels an outstanding job and returns once that is stored; false when the engine does not
    /// hold it (terminal or unknown).
    pub async fn cancel(&self, job_id: Uuid) -> bool {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Input::Cancel { job_id, reply });
        rx.await.unwrap_or(false)
    }

    /// Jobs not yet terminal (and room reserved for batches being stored).
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<Input> {
        self.tx.clone()
    }
}

//! One supervisor for the long-lived tasks of a component (the dispatcher's engine, ingest, API…;
//! the worker's intake, liveness, iperf3 server). Each task is meant to run until the component
//! shuts down: one that ends before — returning, failing or panicking — is a fault of the
//! process. [`Supervisor::watch`] reports it (with the task's name and error, also logged), the
//! component stops the others and exits non-zero, and Kubernetes restarts it.
//!
//! # Test-only fault hook
//! In debug builds (`cfg(debug_assertions)`; release builds ignore it), the variable
//! `PODPERF_TEST_FAULT=<task>[:<how>]` makes the supervised task named `<task>` end as it starts:
//! `panic` (the default) panics, `return` returns as if done, `error` fails with an error. The
//! supervision tests of the dispatcher and the worker use it through the real binaries.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};

/// Any error a task may end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The variable of the test-only fault hook (see the module docs).
pub const FAULT_VAR: &str = "PODPERF_TEST_FAULT";

/// A supervised task ended before shutdown, or failed or panicked during it.
#[derive(Debug, thiserror::Error)]
#[error("task `{task}` failed")]
pub struct TaskFailed {
    /// The name the task was spawned with.
    pub task: &'static str,
    #[source]
    pub end: TaskEnd,
}

/// How a supervised task ended.
#[derive(Debug, thiserror::Error)]
pub enum TaskEnd {
    #[error("it returned before shutdown")]
    Returned,
    #[error(transparent)]
    Failed(BoxError),
    #[error("it panicked: {0}")]
    Panicked(String),
    #[error("it was aborted")]
    Aborted,
}

/// What a supervised task's future may return: `()` or `Result<(), E>`.
pub trait TaskExit {
    fn into_result(self) -> Result<(), BoxError>;
}

impl TaskExit for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> TaskExit for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// The long-lived tasks of one component, by name.
#[derive(Debug, Default)]
pub struct Supervisor {
    tasks: JoinSet<Result<(), BoxError>>,
    names: HashMap<Id, &'static str>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task` as `name`. It is expected to run until the component shuts down.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskExit,
    {
        let fault = fault(name);
        let task = async move {
            match fault {
                None => task.await.into_result(),
                Some(how) => how.strike(name),
            }
        };
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits until `shutdown` resolves (`Ok`) or, before that, any task ends: that task's end is
    /// returned and logged as an error naming the task. Either way the caller then stops the
    /// other tasks and calls [`Supervisor::join`].
    pub async fn watch(&mut self, shutdown: impl Future<Output = ()>) -> Result<(), TaskFailed> {
        tokio::select! {
            _ = shutdown => Ok(()),
            Some(joined) = self.tasks.join_next_with_id() => {
                let failed = self.failure(joined, true).unwrap_or_else(|| unreachable!());
                tracing::error!(
                    task = failed.task,
                    error = %crate::ErrorChain(&failed.end),
                    "a task of the process ended; stopping"
                );
                Err(failed)
            }
        }
    }

    /// After shutdown was asked for: waits, at most `limit`, for the tasks to end (any still
    /// running are then aborted). Ending is expected now; failing or panicking is not: the first
    /// such task is returned (all are logged).
    pub async fn join(mut self, limit: Duration) -> Result<(), TaskFailed> {
        let mut first = None;
        let all = async {
            while let Some(joined) = self.tasks.join_next_with_id().await {
                if let Some(failed) = self.failure(joined, false) {
                    tracing::error!(
                        task = failed.task,
                        error = %crate::ErrorChain(&failed.end),
                        "a task failed while stopping"
                    );
                    first.get_or_insert(failed);
                }
            }
        };
        if tokio::time::timeout(limit, all).await.is_err() {
            let mut left: Vec<&str> = self.names.values().copied().collect();
            left.sort_unstable();
            tracing::warn!(tasks = ?left, ?limit, "tasks did not stop in time; aborting them");
            self.tasks.shutdown().await;
        }
        first.map_or(Ok(()), Err)
    }

    /// The failure `joined` means, if any; with `early`, returning at all is one.
    fn failure(
        &mut self,
        joined: Result<(Id, Result<(), BoxError>), JoinError>,
        early: bool,
    ) -> Option<TaskFailed> {
        let (id, end) = match joined {
            Ok((id, Ok(()))) => (id, early.then_some(TaskEnd::Returned)),
            Ok((id, Err(err))) => (id, Some(TaskEnd::Failed(err))),
            Err(err) => (err.id(), Some(join_error(err))),
        };
        let task = self.names.remove(&id).unwrap_or("unnamed");
        end.map(|end| TaskFailed { task, end })
    }
}

fn join_error(err: JoinError) -> TaskEnd {
    if !err.is_panic() {
        return TaskEnd::Aborted;
    }
    let payload = err.into_panic();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    TaskEnd::Panicked(msg)
}

/// How the test-only fault hook ends a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Panic,
    Return,
    Error,
}

impl Fault {
    fn strike(self, task: &str) -> Result<(), BoxError> {
        let msg = format!("injected fault ({FAULT_VAR}={task})");
        match self {
            Fault::Panic => panic!("{msg}"),
            Fault::Return => Ok(()),
            Fault::Error => Err(msg.into()),
        }
    }
}

/// The fault `PODPERF_TEST_FAULT` asks for `task` (debug builds only).
fn fault(task: &str) -> Option<Fault> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let spec = std::env::var(FAULT_VAR).ok()?;
    let (name, how) = spec.split_once(':').unwrap_or((&spec, "panic"));
    if name != task {
        return None;
    }
    match how {
        "panic" => Some(Fault::Panic),
        "return" => Some(Fault::Return),
        "error" => Some(Fault::Error),
        other => panic!("{FAULT_VAR}: unknown fault {other:?} (panic, return, error)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn a_task_returning_early_is_reported_by_name() {
        let stop = CancellationToken::new();
        let mut sup = Supervisor::new();
        let s = stop.clone();
        sup.spawn("steady", async move { s.cancelled().await });
        sup.spawn("quitter", async {});
        let failed = sup.watch(std::future::pending()).await.unwrap_err();
        assert_eq!(failed.task, "quitter");
        assert!(matches!(failed.end, TaskEnd::Returned));
        stop.cancel();
        sup.join(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_panic_and_an_error_carry_their_message() {
        let mut sup = Supervisor::new();
        sup.spawn("boom", async { panic!("kaput") as () });
        let failed = sup.watch(std::future::pending()).await.unwrap_err();
        assert_eq!(failed.task, "boom");
        assert_eq!(
            crate::ErrorChain(&failed).to_string(),
            "task `boom` failed: it panicked: kaput"
        );

        let mut sup = Supervisor::new();
        sup.spawn("err", async { Err::<(), _>("no luck") });
        let failed = sup.watch(std::future::pending()).await.unwrap_err();
        assert_eq!(
            crate::ErrorChain(&failed).to_string(),
            "task `err` failed: no luck"
        );
    }

    #[tokio::test]
    async fn shutdown_first_then_tasks_end_quietly() {
        let stop = CancellationToken::new();
        let mut sup = Supervisor::new();
        let s = stop.clone();
        sup.spawn("steady", async move { s.cancelled().await });
        sup.watch(async {}).await.unwrap();
        stop.cancel();
        sup.join(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn join_aborts_a_task_that_does_not_stop() {
        let mut sup = Supervisor::new();
        sup.spawn("stuck", std::future::pending::<()>());
        sup.watch(async {}).await.unwrap();
        // Aborted by join after the limit: that is not a failure of the task.
        sup.join(Duration::from_millis(10)).await.unwrap();
    }
}

//! Issue 13's storage budgets, small: the results stream at `PODPERF_RESULTS_MAX_BYTES` drops its
//! oldest messages while new results are still acknowledged, and the Redis view beyond
//! `PODPERF_STORE_MAX_JOBS` loses its oldest terminal jobs; every job still ends exactly once,
//! and `podperf status` shows each store's use against its budget.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use podperf_client::ErrorKind;
use podperf_protocol::api::JobRecord;
use podperf_protocol::outcome::JobState;
use uuid::Uuid;

use crate::harness::{eventually, noops, DispatcherOpts, Sys};

const RESULTS_MAX_BYTES: u64 = 1 << 20;
const STORE_MAX_JOBS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_budgets_drop_the_oldest_and_every_job_still_ends_once() {
    let env = vec![
        (
            "PODPERF_RESULTS_MAX_BYTES".to_string(),
            RESULTS_MAX_BYTES.to_string(),
        ),
        (
            "PODPERF_STORE_MAX_JOBS".to_string(),
            STORE_MAX_JOBS.to_string(),
        ),
    ];
    let mut sys = Sys::start(DispatcherOpts {
        env,
        ..Default::default()
    })
    .await;
    sys.add_worker("pod-a", "node-1", "127.0.0.121", 200);
    sys.wait_workers(&["pod-a"], Duration::from_secs(15)).await;
    // Each job's terminal state is announced once, as it is stored.
    let done: Arc<Mutex<HashMap<Uuid, Vec<JobState>>>> = Default::default();
    let mut sub = sys.nats_client().subscribe("podperf.done.>").await.unwrap();
    sys.nats_client().flush().await.unwrap();
    let d = done.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Ok(r) = serde_json::from_slice::<JobRecord>(&msg.payload) {
                d.lock().unwrap().entry(r.job_id).or_default().push(r.state);
            }
        }
    });

    // ≈ 2 messages of ≈ 400 bytes per job: 2,000 jobs overflow a 1 MiB stream.
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.extend(sys.submit_ok(noops("pod-a", 200, 0)).await);
    }
    let what = format!("all {} jobs announced", ids.len());
    eventually(Duration::from_secs(90), &what, || async {
        let d = done.lock().unwrap();
        ids.iter().all(|id| d.contains_key(id)).then_some(())
    })
    .await;
    {
        let d = done.lock().unwrap();
        let bad: Vec<_> = ids
            .iter()
            .filter(|id| d[*id] != [JobState::Succeeded])
            .collect();
        assert!(bad.is_empty(), "not announced once as succeeded: {bad:?}");
    }

    let status = eventually(Duration::from_secs(15), "the store is trimmed", || async {
        let s = sys.client().status().await.ok()?;
        (s.store.jobs_kept <= STORE_MAX_JOBS).then_some(s)
    })
    .await;
    let st = &status.store;
    println!(
        "FIGURES budgets: {} noop jobs; results stream {} of {} bytes, {} messages; Redis \
         keeps {} of {} jobs, uses {} bytes",
        ids.len(),
        st.results_bytes,
        st.results_max_bytes,
        st.results_messages,
        st.jobs_kept,
        st.jobs_max,
        st.redis_used_bytes
    );
    assert_eq!(
        (st.results_max_bytes, st.jobs_max),
        (RESULTS_MAX_BYTES, STORE_MAX_JOBS)
    );
    assert!(st.results_bytes <= RESULTS_MAX_BYTES, "{st:?}");
    assert!(
        st.results_messages < 2 * ids.len() as u64,
        "the stream dropped its oldest messages: {st:?}"
    );
    assert_eq!(status.queue_depth, 0);

    // The oldest jobs were trimmed, the newest are kept with their results.
    let oldest = sys.client().get(ids[0]).await.unwrap_err();
    assert_eq!(oldest.kind(), ErrorKind::Refused, "{oldest}");
    for id in &ids[ids.len() - 50..] {
        let rec = sys.client().get(*id).await.unwrap();
        assert_eq!(rec.state, JobState::Succeeded);
        assert!(rec.result.is_some());
    }
    // And a job submitted now still goes through.
    let more = sys.submit_ok(noops("pod-a", 5, 0)).await;
    sys.wait_terminal(&more, Duration::from_secs(20)).await;
    let _ = &mut sys;
}

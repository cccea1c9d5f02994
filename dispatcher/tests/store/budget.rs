//! The store's budget: beyond `max_terminal` terminal jobs the oldest are trimmed, never an
//! outstanding job nor one created after the oldest outstanding job (a run in progress).

use super::*;

fn finished(state: JobState) -> Transition {
    Transition {
        finished_at_ms: Some(now_ms()),
        ..Transition::to(state)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_terminal_jobs_are_trimmed_and_outstanding_ones_never() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    // Oldest first: 30 terminal jobs (pings to w2 among them), one outstanding job, 10 newer
    // terminal jobs (as a run in progress would have), one more outstanding job.
    let old: Vec<NewJob> = (0..30)
        .map(|i| match i % 3 {
            0 => ping_job("w1", "w2", 100_000 - i * 100),
            _ => noop_job("w1", 100_000 - i * 100),
        })
        .collect();
    let outstanding = noop_job("w1", 50_000);
    let newer: Vec<NewJob> = (0..10).map(|i| noop_job("w1", 40_000 - i * 100)).collect();
    let running = noop_job("w1", 10_000);
    let all: Vec<NewJob> = old
        .iter()
        .chain([&outstanding])
        .chain(&newer)
        .chain([&running])
        .cloned()
        .collect();
    store.insert(&all).await.unwrap();
    for (i, j) in old.iter().chain(&newer).enumerate() {
        let state = [JobState::Succeeded, JobState::Failed, JobState::TimedOut][i % 3];
        store.transition(j.job_id, &finished(state)).await.unwrap();
    }
    let run = Transition {
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Running)
    };
    store.transition(running.job_id, &run).await.unwrap();
    assert_eq!(store.jobs_kept().await.unwrap(), 42);

    // Budget 25 terminal jobs: 40 are kept, so 15 go — the 15 oldest.
    assert_eq!(store.trim_to(25).await.unwrap(), 15);
    assert_eq!(store.jobs_kept().await.unwrap(), 27);
    for j in &old[..15] {
        assert!(store.get(j.job_id).await.unwrap().is_none(), "trimmed");
    }
    for j in old[15..].iter().chain(&newer) {
        assert!(store.get(j.job_id).await.unwrap().is_some(), "kept");
    }
    // Gone from every index too: the worker indexes (source and target) and the state ones.
    let w2 = ListJobsRequest {
        worker: Some("w2".into()),
        limit: Some(1000),
        ..Default::default()
    };
    let pings_left = old[15..].iter().filter(|j| j.target_worker() == Some("w2"));
    assert_eq!(store.list(&w2).await.unwrap().len(), pings_left.count());
    let succeeded = by_state(&store, JobState::Succeeded).await;
    assert!(succeeded
        .iter()
        .all(|id| old[..15].iter().all(|j| j.job_id != *id)));

    // Budget 0: only terminal jobs older than the oldest outstanding one can go.
    assert_eq!(store.trim_to(0).await.unwrap(), 15);
    assert_eq!(state_of(&store, outstanding.job_id).await, JobState::Queued);
    assert_eq!(state_of(&store, running.job_id).await, JobState::Running);
    for j in &newer {
        assert!(
            store.get(j.job_id).await.unwrap().is_some(),
            "newer than an outstanding job"
        );
    }
    let mut active = store.active().await.unwrap();
    active.sort();
    let mut want = vec![outstanding.job_id, running.job_id];
    want.sort();
    assert_eq!(active, want);

    // Once the old outstanding job ends, the newer ones can go as well.
    store
        .transition(outstanding.job_id, &finished(JobState::Cancelled))
        .await
        .unwrap();
    assert_eq!(store.trim_to(0).await.unwrap(), 11);
    assert_eq!(store.jobs_kept().await.unwrap(), 1);
    assert_eq!(state_of(&store, running.job_id).await, JobState::Running);
}

//! Restarts and outages: a restarted dispatcher resumes; a Redis outage loses nothing.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_dispatcher_ingests_missed_results_and_resumes_outstanding_jobs() {
    let mut env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    w1.listen().await;
    // A and C are accepted by w1; B waits for w2, which is not listening yet.
    let a = env.api.submit_one(noop("w1")).await.unwrap();
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, a);
    let c = env.api.submit_one(noop("w1")).await.unwrap();
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, c);
    env.wait_state(a, JobState::Dispatched, SOON).await;
    env.wait_state(c, JobState::Dispatched, SOON).await;
    let b = env.api.submit_one(noop("w2")).await.unwrap();

    env.stop_dispatcher().await;
    // `run` returns before its NATS connection has finished draining (async-nats' `drain()` only
    // starts it), and a result published in that window goes to the old pull request and waits
    // out the consumer's 30 s ack_wait. Wait until the server has dropped that request.
    env.wait_no_pull_requests().await;
    // While it is down: A's result arrives (durably, in the stream).
    env.publish_result(&outcome(a, "w1", OutcomeStatus::Succeeded))
        .await;
    assert_eq!(get_job_direct(&env, b).await, JobState::Queued);

    env.start_dispatcher().await;
    let rec = env.wait_state(a, JobState::Succeeded, SOON).await;
    assert!(rec.result.is_some());
    // B is resumed: delivered once w2 listens, with the same id.
    w2.listen().await;
    assert_eq!(run_of(w2.next_command(SOON).await).job_id, b);
    env.wait_state(b, JobState::Dispatched, SOON).await;
    env.publish_result(&outcome(b, "w2", OutcomeStatus::Succeeded))
        .await;
    env.wait_state(b, JobState::Succeeded, SOON).await;
    // C is held by the new engine: re-sent with the same id (the worker dedups), cancellable.
    let resent: Vec<Uuid> = w1
        .drain()
        .into_iter()
        .map(|cmd| run_of(cmd).job_id)
        .collect();
    assert!(resent.contains(&c), "C was re-sent: {resent:?}");
    assert!(resent.iter().all(|id| *id == a || *id == c), "{resent:?}");
    env.api.cancel(c).await.expect("cancel");
    env.wait_state(c, JobState::Cancelled, SOON).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_finds_a_worker_gone_keeps_taking_jobs() {
    let mut env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    w1.listen().await;
    w2.listen().await;
    let a = env.api.submit_one(noop("w1")).await.unwrap();
    env.wait_state(a, JobState::Dispatched, SOON).await;

    env.stop_dispatcher().await;
    w1.stop_heartbeat();
    let bucket = env.bucket().await;
    eventually(expiry_bound(&env), "w1's key expires", || {
        let bucket = bucket.clone();
        async move {
            bucket
                .get("w1")
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await;
    env.start_dispatcher().await;
    env.wait_state(a, JobState::WorkerLost, SOON).await;
    // The job ended during recovery must not throw the outstanding-job count off.
    let b = env.api.submit_one(noop("w2")).await.unwrap();
    assert_eq!(run_of(w2.next_command(SOON).await).job_id, b);
}

/// A job's state straight from Redis (the API is down while the dispatcher is).
async fn get_job_direct(env: &Env, id: Uuid) -> JobState {
    let store = podperf_dispatcher::Store::connect(&env.redis.url(), env.cfg.retention)
        .await
        .unwrap();
    store.get(id).await.unwrap().expect("stored").state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_delays_results_but_loses_none() {
    let mut env = Env::start_persistent().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("w1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    tokio::task::block_in_place(|| env.redis.stop());
    let seq = env
        .publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    let err = env.api.get(id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::StoreUnavailable), "{err}");
    let err = env.api.submit(vec![noop("w1")]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::StoreUnavailable), "{err}");

    tokio::task::block_in_place(|| env.redis.restart());
    let rec = eventually(
        Duration::from_secs(20),
        "the result lands after the outage",
        || async {
            let rec = env.api.get(id).await.ok()?;
            (rec.state == JobState::Succeeded).then_some(rec)
        },
    )
    .await;
    assert!(rec.result.is_some());
    env.wait_ingested(seq).await;
}

//! A Redis outage: an error, and the store reconnects by itself.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_is_an_error_and_the_store_reconnects_by_itself() {
    let mut redis = RedisServer::start_persistent();
    let store = store(&redis).await;
    let job = noop_job("w1", 100);
    store.insert(std::slice::from_ref(&job)).await.unwrap();

    tokio::task::block_in_place(|| redis.stop());
    let res = tokio::time::timeout(OUTAGE_BOUND, store.get(job.job_id))
        .await
        .expect("get returns (an error) instead of hanging");
    assert!(res.is_err(), "get while Redis is down: {res:?}");
    let res = tokio::time::timeout(OUTAGE_BOUND, store.insert(&[noop_job("w1", 50)]))
        .await
        .expect("insert returns instead of hanging");
    assert!(res.is_err(), "insert while Redis is down");
    let t = Transition::to(JobState::Succeeded);
    let res = tokio::time::timeout(OUTAGE_BOUND, store.transition(job.job_id, &t))
        .await
        .expect("transition returns instead of hanging");
    assert!(res.is_err(), "transition while Redis is down: {res:?}");

    // Same port, same data (append-only file): the same Store works again.
    tokio::task::block_in_place(|| redis.restart());
    let again = noop_job("w2", 10);
    let deadline = std::time::Instant::now() + OUTAGE_BOUND;
    loop {
        let attempt =
            tokio::time::timeout(OUTAGE_BOUND, store.insert(std::slice::from_ref(&again)))
                .await
                .expect("insert returns");
        if attempt.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not reconnect within {OUTAGE_BOUND:?}: {attempt:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rec = store
        .get(again.job_id)
        .await
        .unwrap()
        .expect("stored after the restart");
    assert_eq!(rec.state, JobState::Queued);
    // The Lua script is loaded again on the new process (EVALSHA → NOSCRIPT → load).
    let t = Transition::to(JobState::Dispatched);
    assert_eq!(
        store.transition(again.job_id, &t).await.unwrap(),
        Applied::Yes
    );
    let old = store.get(job.job_id).await.unwrap().expect("data survived");
    assert_eq!(
        old.state,
        JobState::Queued,
        "nothing landed during the outage"
    );
    let done = Transition::to(JobState::Succeeded);
    assert_eq!(
        store.transition(job.job_id, &done).await.unwrap(),
        Applied::Yes
    );
}

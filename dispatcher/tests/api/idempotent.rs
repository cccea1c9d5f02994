//! Idempotent submits: a submit retried with its submit id (after a lost answer, say) is
//! answered the first one's job ids and stores and runs nothing more; the same id with another
//! batch is refused; concurrent attempts store one batch; `runs.start` likewise.

use podperf_protocol::api::{SubmitReply, SubmitRequest};
use podperf_protocol::run::{ListRunsRequest, MatrixRequest, RunStarted};

use super::*;

fn noop_ms(source: &str, sleep_ms: u32) -> podperf_protocol::job::JobSpec {
    podperf_protocol::job::JobSpec {
        params: JobParams::Noop(NoopParams { sleep_ms }),
        ..noop(source)
    }
}

/// The ids of every job the store lists.
async fn stored(env: &Env) -> Vec<Uuid> {
    let jobs = env.api.list(&all_jobs()).await.expect("jobs.list");
    jobs.iter().map(|j| j.job_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_submit_is_answered_its_first_ids_and_runs_once() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w-idem-1", "pod-i1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = Uuid::new_v4();
    let batch = vec![noop_ms("pod-i1", 10), noop_ms("pod-i1", 20)];

    let first = env.api.submit_with_id(id, batch.clone()).await.unwrap();
    let again = env.api.submit_with_id(id, batch.clone()).await.unwrap();
    assert_eq!(again, first, "a retry is answered the first submit's ids");
    // As a raw request too (what any client sends), while the jobs are outstanding.
    let raw = serde_json::to_vec(&SubmitRequest {
        jobs: batch.clone(),
        submit_id: Some(id),
    })
    .unwrap();
    let reply = call_raw_reply(&env.api, endpoint::JOBS_SUBMIT, raw).await;
    let reply: SubmitReply = serde_json::from_value(reply.expect("accepted")).unwrap();
    assert_eq!(reply.job_ids, first);

    let mut run = vec![w.next_run(SOON).await, w.next_run(SOON).await];
    run.sort();
    let mut expected = first.clone();
    expected.sort();
    assert_eq!(run, expected, "each job of the batch is delivered");
    w.no_command(QUIET).await; // and only once
    let mut kept = stored(&env).await;
    kept.sort();
    assert_eq!(kept, expected, "one batch in the store");

    for job in &first {
        env.publish_result(&outcome(*job, w.id(), OutcomeStatus::Succeeded))
            .await;
        env.wait_state(*job, JobState::Succeeded, SOON).await;
    }
    // After the jobs ended, a retry still stores and runs nothing.
    assert_eq!(env.api.submit_with_id(id, batch).await.unwrap(), first);
    w.no_command(QUIET).await;
    assert_eq!(stored(&env).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_id_reused_for_another_batch_is_refused_and_stores_nothing() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w-idem-2", "pod-i2", "n1", "10.244.1.3"))
        .await;
    w.listen().await;
    let id = Uuid::new_v4();
    let first = env
        .api
        .submit_with_id(id, vec![noop_ms("pod-i2", 10)])
        .await
        .unwrap();
    for other in [
        vec![noop_ms("pod-i2", 11)],
        vec![noop_ms("pod-i2", 10), noop_ms("pod-i2", 10)],
    ] {
        let err = env.api.submit_with_id(id, other).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::SubmitIdReused), "{err}");
        let api = err.api_error().expect("a typed refusal");
        assert_eq!(api.field.as_deref(), Some("submit_id"));
        assert!(api.message.contains(&id.to_string()), "{}", api.message);
    }
    assert_eq!(stored(&env).await, first);
    // A new id is a new batch; no id at all (an older client) too.
    let second = env.api.submit(vec![noop_ms("pod-i2", 10)]).await.unwrap();
    let raw = serde_json::to_vec(&json!({ "jobs": [noop_ms("pod-i2", 10)] })).unwrap();
    let reply = call_raw_reply(&env.api, endpoint::JOBS_SUBMIT, raw).await;
    reply.expect("a submit without an id is accepted");
    assert_ne!(second, first);
    assert_eq!(stored(&env).await.len(), 3);
    // Not a UUID: refused as a malformed request.
    let raw = br#"{"jobs": [], "submit_id": "not-a-uuid"}"#.to_vec();
    let err = call_raw_reply(&env.api, endpoint::JOBS_SUBMIT, raw)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attempts_of_one_submit_store_one_batch() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w-idem-3", "pod-i3", "n1", "10.244.1.4"))
        .await;
    w.listen().await;
    let id = Uuid::new_v4();
    let batch = vec![noop_ms("pod-i3", 10)];
    // Many at once: some pass the claim check before the first is stored, and meet the claim
    // in the insert script instead.
    let answers =
        futures::future::join_all((0..16).map(|_| env.api.submit_with_id(id, batch.clone()))).await;
    let answers: Vec<Vec<Uuid>> = answers.into_iter().map(Result::unwrap).collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(stored(&env).await, answers[0]);
    assert_eq!(w.next_run(SOON).await, answers[0][0]);
    w.no_command(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_run_start_starts_one_run() {
    let env = Env::start().await;
    let mut a = env
        .register(worker("w-idem-a", "pod-ra", "n1", "10.244.1.5"))
        .await;
    let mut b = env
        .register(worker("w-idem-b", "pod-rb", "n2", "10.244.2.5"))
        .await;
    a.listen().await;
    b.listen().await;
    let req = MatrixRequest {
        samples: 1,
        ping_count: 1,
        iperf3_duration_s: 1,
        submit_id: Some(Uuid::new_v4()),
        ..MatrixRequest::default()
    };
    let first: RunStarted = env.api.run_start(&req).await.unwrap();
    let again: RunStarted = env.api.run_start(&req).await.unwrap();
    assert_eq!(again, first);
    let runs = env.api.runs(&ListRunsRequest::default()).await.unwrap();
    assert_eq!(runs.runs.len(), 1, "{runs:?}");
    let mut kept = stored(&env).await;
    kept.sort();
    let mut expected = first.job_ids.clone();
    expected.sort();
    assert_eq!(kept, expected, "one run's jobs in the store");
    // The run's record holds the request without the id.
    let report = env.api.run(first.run_id).await.unwrap();
    assert_eq!(report.request.submit_id, None);

    let other = MatrixRequest {
        samples: 2,
        ..req.clone()
    };
    let err = env.api.run_start(&other).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::SubmitIdReused), "{err}");
    assert_eq!(
        env.api
            .runs(&ListRunsRequest::default())
            .await
            .unwrap()
            .runs
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_is_kept_for_the_configured_ttl() {
    let env = Env::start_with(podperf_dispatcher::DispatcherConfig {
        submit_id_ttl: Duration::from_secs(90),
        ..test_config()
    })
    .await;
    let mut w = env
        .register(worker("w-idem-4", "pod-i4", "n1", "10.244.1.6"))
        .await;
    w.listen().await;
    let id = Uuid::new_v4();
    env.api
        .submit_with_id(id, vec![noop_ms("pod-i4", 10)])
        .await
        .unwrap();
    let mut conn = redis::Client::open(env.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("podperf:submit:{id}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=90).contains(&ttl), "the claim's TTL is {ttl} s");
}

//! Delivery: a job reaches its worker, is retried, times out, is cancelled or refused.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noop_job_is_delivered_and_its_result_stored_and_announced() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let mut observed = observe_jobs(&env).await;

    let id = env
        .api
        .submit_one(spec(
            json!({"source": "pod-1", "params": {"kind": "noop", "sleep_ms": 5}}),
        ))
        .await
        .unwrap();
    let run = run_of(w.next_command(SOON).await);
    assert_eq!(run.job_id, id);
    assert_eq!(run.params, JobParams::Noop(NoopParams { sleep_ms: 5 }));
    assert_eq!(run.target, None);
    // The observer saw exactly that request on the worker's own subject.
    let msg = tokio::time::timeout(SOON, observed.next())
        .await
        .expect("observed")
        .unwrap();
    assert_eq!(msg.subject.as_str(), "podperf.jobs.w1");
    let raw: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(raw["command"], "run");
    assert_eq!(raw["job_id"], id.to_string());

    let rec = env.wait_state(id, JobState::Dispatched, SOON).await;
    assert_eq!(rec.attempts, 1);
    assert!(rec.dispatched_at_ms.is_some());
    assert_eq!(rec.deadline_at_ms, run.deadline_at_ms);
    assert!(rec.deadline_at_ms > rec.created_at_ms);

    let mut done = env.client.subscribe(done_subject(id)).await.unwrap();
    env.client.flush().await.unwrap();
    let result = outcome(id, "w1", OutcomeStatus::Succeeded);
    env.publish_result(&result).await;
    let rec = env.wait_state(id, JobState::Succeeded, SOON).await;
    assert_eq!(
        rec.result,
        Some(ProbeResult::Noop(NoopResult { slept_ms: 7 }))
    );
    assert_eq!(rec.raw_output.as_deref(), Some("raw"));
    assert_eq!(rec.started_at_ms, Some(result.started_at_ms));
    assert_eq!(rec.finished_at_ms, Some(result.finished_at_ms));
    let notice = tokio::time::timeout(SOON, done.next())
        .await
        .expect("a done notice")
        .unwrap();
    let announced: JobRecord = serde_json::from_slice(&notice.payload).expect("the record");
    assert_eq!(
        (announced.job_id, announced.state.as_str()),
        (id, "succeeded")
    );

    let listed = env
        .api
        .list(&ListJobsRequest {
            state: Some(JobState::Succeeded),
            worker: Some("pod-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|r| r.job_id).collect::<Vec<_>>(),
        vec![id]
    );
    let dispatched = ListJobsRequest {
        state: Some(JobState::Dispatched),
        ..Default::default()
    };
    assert!(env.api.list(&dispatched).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_for_a_worker_not_yet_listening_is_retried_with_the_same_id() {
    let env = Env::start().await;
    // Its key is live, but nobody is subscribed to its job subject: "no responders".
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.api.get(id).await.unwrap().state, JobState::Queued);

    w.listen().await;
    let first = run_of(w.next_command(SOON).await);
    assert_eq!(first.job_id, id);
    let rec = env.wait_state(id, JobState::Dispatched, SOON).await;
    assert!(
        rec.attempts >= 2,
        "the first attempt(s) found no responder: {}",
        rec.attempts
    );
    env.publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    env.wait_state(id, JobState::Succeeded, SOON).await;
    // Every delivery that reached the worker carried the same job id.
    for cmd in w.drain() {
        assert_eq!(run_of(cmd).job_id, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_job_without_a_result_times_out_after_its_deadline_and_grace() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env
        .api
        .submit_one(spec(
            json!({"source": "pod-1", "params": {"kind": "noop"}, "timeout_s": 1}),
        ))
        .await
        .unwrap();
    let mut done = env.client.subscribe(done_subject(id)).await.unwrap();
    env.client.flush().await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);

    let rec = env.wait_state(id, JobState::TimedOut, SOON).await;
    let finished = rec.finished_at_ms.expect("finished_at_ms");
    let grace = env.cfg.deadline_grace.as_millis() as u64;
    assert!(
        finished >= rec.deadline_at_ms + grace,
        "timed out at {finished}, before deadline {} + grace {grace}",
        rec.deadline_at_ms
    );
    assert!(rec.message.is_some());
    // The worker is told to stop.
    match w.next_command(SOON).await {
        WorkerCommand::Cancel(c) => assert_eq!(c.job_id, id),
        other => panic!("expected a cancel, got {other:?}"),
    }
    let notice = tokio::time::timeout(SOON, done.next())
        .await
        .expect("a done notice")
        .unwrap();
    let announced: JobRecord = serde_json::from_slice(&notice.payload).expect("the record");
    assert_eq!(
        (announced.job_id, announced.state.as_str()),
        (id, "timed_out")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_the_job_tells_the_worker_and_the_first_terminal_state_wins() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    let mut done = env.client.subscribe(done_subject(id)).await.unwrap();
    env.client.flush().await.unwrap();
    let reply = env.api.cancel(id).await.expect("cancel");
    assert_eq!(reply.job_id, id);
    let rec = env.wait_state(id, JobState::Cancelled, SOON).await;
    assert!(rec.finished_at_ms.is_some());
    match w.next_command(SOON).await {
        WorkerCommand::Cancel(c) => assert_eq!(c.job_id, id),
        other => panic!("expected a cancel, got {other:?}"),
    }
    let notice = tokio::time::timeout(SOON, done.next())
        .await
        .expect("a done notice")
        .unwrap();
    let announced: JobRecord = serde_json::from_slice(&notice.payload).expect("the record");
    assert_eq!(
        (announced.job_id, announced.state.as_str()),
        (id, "cancelled")
    );

    // The worker's own result arrives afterwards: the first terminal state stays.
    let seq = env
        .publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    let rec = env.api.get(id).await.unwrap();
    assert_eq!(rec.state, JobState::Cancelled);
    assert_eq!(rec.result, None);
    assert_eq!(rec.raw_output, None);

    // Cancelling again, or an unknown job.
    let again = env.api.cancel(id).await.expect("cancel again");
    assert_eq!(again.state, JobState::Cancelled);
    let err = env.api.cancel(Uuid::now_v7()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_job_fails_and_a_worker_at_capacity_is_retried() {
    let env = Env::start().await;
    let mut strict = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut busy = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    strict
        .listen_with(|_| Some(RefusalReason::InvalidSpec))
        .await;
    busy.listen_with(|n| (n < 2).then_some(RefusalReason::AtCapacity))
        .await;

    let refused = env.api.submit_one(noop("w1")).await.unwrap();
    let rec = env.wait_state(refused, JobState::Failed, SOON).await;
    assert_eq!(rec.reason, Some(FailureReason::Refused));
    assert!(rec.message.is_some());
    assert_eq!(run_of(strict.next_command(SOON).await).job_id, refused);

    let retried = env.api.submit_one(noop("w2")).await.unwrap();
    let rec = env.wait_state(retried, JobState::Dispatched, SOON).await;
    assert_eq!(rec.attempts, 3, "two at-capacity refusals, then accepted");
    for _ in 0..3 {
        assert_eq!(run_of(busy.next_command(SOON).await).job_id, retried);
    }
}

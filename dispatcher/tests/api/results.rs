//! Results: only the source's result ends a job; bandwidth jobs keep their nodes apart.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_from_a_worker_that_is_not_the_source_is_ignored() {
    let env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    w1.listen().await;
    w2.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    let seq = env
        .publish_result(&outcome(id, "w2", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    let rec = env.api.get(id).await.unwrap();
    assert_eq!(rec.state, JobState::Dispatched);
    assert_eq!(rec.result, None);

    // The source's own result still lands.
    env.publish_result(&outcome(id, "w1", OutcomeStatus::Failed))
        .await;
    let rec = env.wait_state(id, JobState::Failed, SOON).await;
    assert_eq!(rec.message.as_deref(), Some("from the test"));
}

/// Bandwidth job A (w1 → w2) and B (w1 → w3) share node n1; a result from the wrong worker for A
/// must neither end A's tracking (its deadline still applies) nor free n1 for B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_from_the_wrong_worker_keeps_the_job_tracked_and_its_nodes_held() {
    let env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    let mut w3 = env
        .register(worker("w3", "pod-3", "n3", "10.244.3.2"))
        .await;
    for w in [&mut w1, &mut w2, &mut w3] {
        w.listen().await;
    }
    let ids = env
        .api
        .submit(vec![
            spec(
                json!({"source": "w1", "target": {"worker": "w2"}, "params": {"kind": "iperf3"},
                        "timeout_s": 3}),
            ),
            spec(json!({"source": "w1", "target": {"worker": "w3"}, "params": {"kind": "iperf3"}})),
        ])
        .await
        .expect("submit");
    let (a, b) = (ids[0], ids[1]);
    assert_eq!(run_of(w1.next_command(SOON).await).job_id, a);
    env.wait_state(a, JobState::Dispatched, SOON).await;

    let seq = env
        .publish_result(&outcome(a, "w3", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    assert_eq!(env.api.get(a).await.unwrap().state, JobState::Dispatched);
    w1.no_command(QUIET).await; // B still waits for n1
    assert_eq!(env.api.get(b).await.unwrap().state, JobState::Queued);
    // A's deadline still ends it, and only then B starts.
    env.wait_state(a, JobState::TimedOut, SOON).await;
    assert_eq!(run_of_or_skip_cancel(&mut w1).await, b);
}

/// The next run's job id, skipping cancel commands.
async fn run_of_or_skip_cancel(w: &mut FakeWorker) -> Uuid {
    loop {
        match w.next_command(SOON).await {
            WorkerCommand::Run(a) => return a.job_id,
            WorkerCommand::Cancel(_) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_jobs_sharing_a_node_run_one_after_the_other() {
    let env = Env::start().await;
    let mut w1 = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    let mut w2 = env
        .register(worker("w2", "pod-2", "n2", "10.244.2.2"))
        .await;
    let mut w3 = env
        .register(worker("w3", "pod-3", "n3", "10.244.3.2"))
        .await;
    for w in [&mut w1, &mut w2, &mut w3] {
        w.listen().await;
    }
    // A: n1 → n2; B: n3 → n2 (same target node and iperf3 server); C: noop on n1 (free).
    let ids = env
        .api
        .submit(vec![
            spec(json!({"source": "w1", "target": {"worker": "w2"}, "params": {"kind": "iperf3"}})),
            spec(json!({"source": "w3", "target": {"worker": "w2"}, "params": {"kind": "iperf3"}})),
            noop("w1"),
        ])
        .await
        .expect("submit");
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let mut on_w1 = vec![
        run_of(w1.next_command(SOON).await).job_id,
        run_of(w1.next_command(SOON).await).job_id,
    ];
    on_w1.sort();
    let mut expect = vec![a, c];
    expect.sort();
    assert_eq!(on_w1, expect, "A and the noop start at once");
    env.wait_state(a, JobState::Dispatched, SOON).await;

    w3.no_command(Duration::from_millis(1500)).await;
    assert_eq!(env.api.get(b).await.unwrap().state, JobState::Queued);
    assert!(w3.drain().is_empty(), "B started while A held n2");
    let released_at = podperf_protocol::now_ms();
    env.publish_result(&outcome(a, "w1", OutcomeStatus::Succeeded))
        .await;
    let run_b = run_of(w3.next_command(SOON).await);
    assert_eq!(run_b.job_id, b);
    let rec_b = env.wait_state(b, JobState::Dispatched, SOON).await;
    let rec_a = env.api.get(a).await.unwrap();
    assert_eq!(rec_a.state, JobState::Succeeded);
    assert!(
        rec_b.dispatched_at_ms.unwrap() >= released_at,
        "B was dispatched before A's result was published"
    );
    assert!(w2.drain().is_empty(), "the target runs nothing itself");
}

/// `worker_id: ""` must not pass the source check (an empty id is not a valid worker id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_with_an_empty_worker_id_is_ignored() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("w1")).await.unwrap();
    env.wait_state(id, JobState::Dispatched, SOON).await;
    let seq = env
        .publish_result(&outcome(id, "", OutcomeStatus::Succeeded))
        .await;
    env.wait_ingested(seq).await;
    assert_eq!(env.api.get(id).await.unwrap().state, JobState::Dispatched);
}

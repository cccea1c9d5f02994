//! Forged jobs sent straight to a worker, and forged or late results.

use super::*;

/// A job published straight to a worker's subject (bypassing the dispatcher) is checked by the
/// worker itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_job_sent_straight_to_a_worker_is_refused_by_its_own_validation() {
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    sys.add_worker("pod-a", "node-1", "127.0.0.124", 8);
    sys.wait_workers(&["pod-a"], Duration::from_secs(15)).await;
    let subject = format!("podperf.jobs.{}", sys.worker_id("pod-a"));
    let mut results = sys.nats_client().subscribe("podperf.>").await.unwrap();
    let future = podperf_protocol::now_ms() + 60_000;
    let target = json!({"ip": "127.0.0.1", "port": 5201});
    let run = |params: Value, target: Option<Value>, deadline: u64| {
        let mut v = json!({"command": "run", "job_id": Uuid::now_v7(), "params": params,
                           "deadline_at_ms": deadline});
        if let Some(t) = target {
            v["target"] = t;
        }
        serde_json::to_vec(&v).unwrap()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "ping flood",
            run(
                json!({"kind": "ping", "count": 1000, "interval_ms": 1}),
                Some(target.clone()),
                future,
            ),
            "invalid_spec",
        ),
        (
            "count 5000",
            run(
                json!({"kind": "ping", "count": 5000}),
                Some(target.clone()),
                future,
            ),
            "invalid_spec",
        ),
        (
            "iperf3 61 s",
            run(
                json!({"kind": "iperf3", "duration_s": 61}),
                Some(target.clone()),
                future,
            ),
            "invalid_spec",
        ),
        (
            "no target",
            run(json!({"kind": "ping"}), None, future),
            "invalid_spec",
        ),
        (
            "extra flags",
            run(
                json!({"kind": "ping", "flags": "-f"}),
                Some(target.clone()),
                future,
            ),
            "invalid_spec",
        ),
        (
            "target is an option",
            run(
                json!({"kind": "ping"}),
                Some(json!({"ip": "-f", "port": 1})),
                future,
            ),
            "invalid_spec",
        ),
        (
            "deadline passed",
            run(json!({"kind": "ping", "count": 1}), Some(target.clone()), 1),
            "deadline_passed",
        ),
        ("not JSON", b"; rm -rf /".to_vec(), "invalid_spec"),
        (
            "unknown command",
            br#"{"command": "exec", "argv": ["rm", "-rf", "/"]}"#.to_vec(),
            "invalid_spec",
        ),
    ];
    for (label, payload, reason) in &cases {
        let reply = sys
            .nats_client()
            .request(subject.clone(), payload.clone().into())
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(v["reply"], "refused", "{label}: {v}");
        assert_eq!(v["reason"], *reason, "{label}: {v}");
    }
    // Nothing ran: no event or result was published, no ping started.
    let mut others = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1500), results.next()).await
    {
        if m.subject.starts_with("podperf.events.") || m.subject.starts_with("podperf.results.") {
            others.push(m.subject.to_string());
        }
    }
    assert!(others.is_empty(), "the worker ran a forged job: {others:?}");
    let tools = sys.worker_tools_running();
    assert!(tools.is_empty(), "the worker started something: {tools:?}");
    let log = sys.workers[0].proc.log();
    assert!(!log.contains("job finished"), "{log}");
}

/// Forged or late results: unknown job, second result for a finished job, result from the wrong
/// worker, garbage — none changes a terminal state, and ingest keeps going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_results_never_overwrite_the_first_terminal_state() {
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    sys.add_worker("pod-a", "node-1", "127.0.0.125", 8);
    sys.add_worker("pod-b", "node-2", "127.0.0.126", 8);
    sys.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(15))
        .await;
    let (a, b) = (sys.worker_id("pod-a"), sys.worker_id("pod-b"));
    let js = async_nats::jetstream::new(sys.nats_client().clone());
    let forge = |job_id: Uuid, worker: &str, status: &str, slept: u32| {
        json!({"job_id": job_id, "worker_id": worker, "status": status,
               "reason": if status == "failed" { json!("tool_error") } else { Value::Null },
               "message": "forged", "result": {"kind": "noop", "slept_ms": slept},
               "started_at_ms": 1, "finished_at_ms": 2})
    };
    let publish = |id: Uuid, v: Value| {
        let js = js.clone();
        async move {
            js.publish(result_subject(id), serde_json::to_vec(&v).unwrap().into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };

    // 1. A result for a job nobody submitted.
    let ghost = Uuid::now_v7();
    publish(ghost, forge(ghost, &a, "succeeded", 1)).await;
    // 2. Garbage on a result subject.
    js.publish(result_subject(ghost), "}{ not json".into())
        .await
        .unwrap()
        .await
        .unwrap();

    // 3. A finished job gets a second, different result (from its own worker's id).
    let done = sys.submit_ok(vec![noop("pod-a", 10)]).await[0];
    sys.wait_terminal(&[done], Duration::from_secs(10)).await;
    let before = sys.get(done).await.unwrap();
    assert_eq!(before.state, JobState::Succeeded);
    publish(done, forge(done, &a, "failed", 999)).await;

    // 4. A running job gets a result from a worker that is not its source.
    let running = sys.submit_ok(vec![noop("pod-a", 3_000)]).await[0];
    eventually(Duration::from_secs(5), "the job runs", || async {
        (sys.get(running).await?.state == JobState::Running).then_some(())
    })
    .await;
    publish(running, forge(running, &b, "succeeded", 1)).await;
    sys.wait_ingested(Duration::from_secs(10)).await;
    assert_eq!(
        sys.get(running).await.unwrap().state,
        JobState::Running,
        "the wrong worker's result was taken"
    );

    sys.wait_terminal(&[running], Duration::from_secs(10)).await;
    let after_done = sys.get(done).await.unwrap();
    assert_eq!(after_done, before, "a second result changed a finished job");
    let r = sys.get(running).await.unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    assert_eq!(
        r.result,
        Some(ProbeResult::Noop(NoopResult { slept_ms: 3_000 })),
        "the forged result won: {r:?}"
    );
    assert!(
        sys.get(ghost).await.is_none(),
        "a job was invented from a forged result"
    );

    // Ingest is not stuck behind the garbage: a new job still completes.
    let next = sys.submit_ok(vec![noop("pod-b", 0)]).await;
    sys.wait_terminal(&next, Duration::from_secs(10)).await;
    let log = sys.dispatcher.as_ref().unwrap().log();
    assert!(
        log.contains("malformed") || log.contains("unknown job"),
        "ignored results are logged:\n{log}"
    );
}

//! The state machine: forward only, the first terminal state wins, the source check.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_only_move_forward_and_the_first_terminal_state_wins() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let job = ping_job("w1", "w2", 1_000);
    let id = job.job_id;
    store.insert(&[job]).await.unwrap();

    let dispatched = Transition {
        attempts: Some(2),
        dispatched_at_ms: Some(1_111),
        ..Transition::to(JobState::Dispatched)
    };
    assert_eq!(
        store.transition(id, &dispatched).await.unwrap(),
        Applied::Yes
    );
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Dispatched);
    assert_eq!((rec.attempts, rec.dispatched_at_ms), (2, Some(1_111)));
    assert_eq!(by_state(&store, JobState::Queued).await, Vec::<Uuid>::new());
    assert_eq!(by_state(&store, JobState::Dispatched).await, vec![id]);

    // The same rank again is stale.
    assert_eq!(
        store.transition(id, &dispatched).await.unwrap(),
        Applied::Stale
    );

    let running = Transition {
        started_at_ms: Some(2_222),
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Running)
    };
    assert_eq!(store.transition(id, &running).await.unwrap(), Applied::Yes);
    assert_eq!(by_state(&store, JobState::Running).await, vec![id]);
    assert_eq!(
        by_state(&store, JobState::Dispatched).await,
        Vec::<Uuid>::new()
    );

    // A late "dispatched" (e.g. the engine's write racing the worker's started event).
    let late = Transition {
        attempts: Some(9),
        ..Transition::to(JobState::Dispatched)
    };
    assert_eq!(store.transition(id, &late).await.unwrap(), Applied::Stale);
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Running, "the state never moves back");
    // By design a live job still takes a late transition's fields (attempts, dispatch time).
    assert_eq!(rec.attempts, 9);
    assert_eq!(rec.started_at_ms, Some(2_222));
    assert_eq!(store.active().await.unwrap(), vec![id]);

    let succeeded = Transition {
        finished_at_ms: Some(3_333),
        result: noop_result(5),
        raw_output: Some("first".into()),
        message: Some("first message".into()),
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Succeeded)
    };
    assert_eq!(
        store.transition(id, &succeeded).await.unwrap(),
        Applied::Yes
    );
    assert_eq!(by_state(&store, JobState::Succeeded).await, vec![id]);
    assert_eq!(
        by_state(&store, JobState::Running).await,
        Vec::<Uuid>::new()
    );
    assert!(
        store.active().await.unwrap().is_empty(),
        "terminal jobs are not active"
    );

    // After a terminal state: every other transition, terminal or not, is stale.
    let later = [
        Transition::to(JobState::Queued),
        Transition::to(JobState::Dispatched),
        Transition::to(JobState::Running),
        Transition::to(JobState::Succeeded),
        Transition {
            reason: Some(FailureReason::ToolError),
            message: Some("second message".into()),
            result: noop_result(99),
            raw_output: Some("second".into()),
            finished_at_ms: Some(4_444),
            ..Transition::to(JobState::Failed)
        },
        Transition::to(JobState::TimedOut).message("late timeout"),
        Transition::to(JobState::WorkerLost).message("late loss"),
        Transition::to(JobState::Cancelled).message("late cancel"),
        // A field-only update must not touch a terminal job either.
        Transition {
            message: Some("field only".into()),
            ..Default::default()
        },
    ];
    for t in &later {
        assert_eq!(
            store.transition(id, t).await.unwrap(),
            Applied::Stale,
            "{t:?}"
        );
    }
    let rec = store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, JobState::Succeeded);
    assert_eq!(rec.result, noop_result(5));
    assert_eq!(rec.reason, None);
    assert_eq!(rec.message.as_deref(), Some("first message"));
    assert_eq!(rec.raw_output.as_deref(), Some("first"));
    assert_eq!(rec.finished_at_ms, Some(3_333));
    for s in JobState::ALL {
        let expect = if s == JobState::Succeeded {
            vec![id]
        } else {
            vec![]
        };
        assert_eq!(by_state(&store, s).await, expect, "index of {s}");
    }

    // Straight from queued to a terminal state, keeping reason and message.
    let other = noop_job("w1", 500);
    let oid = other.job_id;
    store.insert(&[other]).await.unwrap();
    let lost = Transition {
        reason: None,
        ..Transition::to(JobState::WorkerLost).message("gone")
    };
    assert_eq!(store.transition(oid, &lost).await.unwrap(), Applied::Yes);
    let cancel = Transition::to(JobState::Cancelled).message("too late");
    assert_eq!(
        store.transition(oid, &cancel).await.unwrap(),
        Applied::Stale
    );
    let rec = store.get(oid).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.message.as_deref()),
        (JobState::WorkerLost, Some("gone"))
    );
    assert!(store.active().await.unwrap().is_empty());
    assert_eq!(by_state(&store, JobState::WorkerLost).await, vec![oid]);
    assert_eq!(by_state(&store, JobState::Queued).await, Vec::<Uuid>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_from_another_worker_changes_nothing_and_unknown_jobs_are_missing() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let job = ping_job("w1", "w2", 1_000);
    let id = job.job_id;
    store.insert(&[job]).await.unwrap();
    let before = store.get(id).await.unwrap().unwrap();

    // The target worker (or anyone but the source) cannot complete the job.
    for intruder in ["w2", "w", "w1x", "W1"] {
        let t = Transition {
            result: noop_result(1),
            message: Some("forged".into()),
            finished_at_ms: Some(9),
            expect_worker: Some(intruder.into()),
            ..Transition::to(JobState::Succeeded)
        };
        let applied = store.transition(id, &t).await.unwrap();
        assert_eq!(applied, Applied::WrongWorker, "from {intruder:?}");
    }
    let after = store.get(id).await.unwrap().unwrap();
    assert_eq!(after, before, "nothing changed");
    assert_eq!(by_state(&store, JobState::Queued).await, vec![id]);
    assert_eq!(store.active().await.unwrap(), vec![id]);

    // The source worker can.
    let ok = Transition {
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Failed)
    };
    assert_eq!(store.transition(id, &ok).await.unwrap(), Applied::Yes);

    let unknown = Uuid::now_v7();
    for t in [
        Transition::to(JobState::Dispatched),
        Transition::to(JobState::Succeeded),
        Transition {
            expect_worker: Some("w1".into()),
            ..Transition::to(JobState::Running)
        },
    ] {
        assert_eq!(
            store.transition(unknown, &t).await.unwrap(),
            Applied::Missing
        );
    }
    assert_eq!(store.get(unknown).await.unwrap(), None);
    assert_eq!(store.get_new_job(unknown).await.unwrap(), None);
}

/// A result whose `worker_id` is empty (ingest passes it on as `expect_worker: Some("")`) must
/// not bypass the source check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_expected_worker_is_not_a_wildcard() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let job = noop_job("w1", 100);
    let id = job.job_id;
    store.insert(&[job]).await.unwrap();
    let forged = Transition {
        message: Some("forged".into()),
        expect_worker: Some(String::new()),
        ..Transition::to(JobState::Succeeded)
    };
    let applied = store.transition(id, &forged).await.unwrap();
    assert_eq!(state_of(&store, id).await, JobState::Queued);
    assert_eq!(applied, Applied::WrongWorker);
}

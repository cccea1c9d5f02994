//! Fencing: a state change carrying a leader's epoch is refused once a newer leader has taken
//! its epoch — typed, and with nothing written.

use podperf_dispatcher::store::StoreError;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_epoch_is_refused_and_writes_nothing() {
    let redis = RedisServer::start();
    let plain = store(&redis).await;
    assert_eq!(plain.current_epoch().await.unwrap(), 0);
    let first = plain.next_epoch().await.unwrap();
    let old = plain.fenced(first);
    let job = ping_job("w1", "w2", 1_000);
    let id = job.job_id;
    plain.insert(&[job]).await.unwrap();

    // The current leader's writes land.
    let dispatched = Transition {
        attempts: Some(1),
        ..Transition::to(JobState::Dispatched)
    };
    assert_eq!(old.transition(id, &dispatched).await.unwrap(), Applied::Yes);

    // A new leader takes the next epoch: the old one's writes are refused, whatever they are.
    let second = plain.next_epoch().await.unwrap();
    assert!(second > first);
    let new = plain.fenced(second);
    let timed_out = Transition {
        finished_at_ms: Some(9_999),
        ..Transition::to(JobState::TimedOut)
    }
    .message("the old leader's verdict");
    let err = old.transition(id, &timed_out).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Fenced { epoch } if epoch == first),
        "{err}"
    );
    let fields_only = Transition {
        attempts: Some(7),
        ..Default::default()
    };
    assert!(matches!(
        old.transition(id, &fields_only).await,
        Err(StoreError::Fenced { .. })
    ));
    let rec = plain.get(id).await.unwrap().unwrap();
    assert_eq!(
        rec.state,
        JobState::Dispatched,
        "nothing of the old leader landed"
    );
    assert_eq!((rec.attempts, rec.message), (1, None));
    assert_eq!(
        by_state(&plain, JobState::TimedOut).await,
        Vec::<Uuid>::new()
    );
    assert_eq!(plain.active().await.unwrap(), vec![id]);

    // The new leader's land; so do unfenced writes (tools, tests).
    let running = Transition {
        expect_worker: Some("w1".into()),
        ..Transition::to(JobState::Running)
    };
    assert_eq!(new.transition(id, &running).await.unwrap(), Applied::Yes);
    assert_eq!(
        plain.get(id).await.unwrap().unwrap().state,
        JobState::Running
    );
    assert_eq!(new.epoch(), Some(second));
}

//! Workers: the live list, its pages, expiry, and what happens to jobs when a worker's key expires or it restarts.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_list_shows_live_workers_and_drops_expired_ones() {
    let env = Env::start().await;
    let a = env
        .register(worker("w-a", "pod-a", "n1", "10.244.1.2"))
        .await;
    let mut b = env
        .register(worker("w-b", "pod-b", "n2", "10.244.2.2"))
        .await;

    let workers = env.api.workers().await.unwrap();
    let infos: Vec<_> = workers.iter().map(|w| w.info.clone()).collect();
    assert_eq!(
        infos,
        vec![a.info.clone(), b.info.clone()],
        "ordered by node"
    );
    assert!(workers.iter().all(|w| w.last_seen_at_ms > 0));

    // Still listed after several TTLs while refreshed.
    tokio::time::sleep(env.cfg.worker_ttl * 2).await;
    assert_eq!(env.api.workers().await.unwrap().len(), 2);

    b.stop_heartbeat();
    eventually(
        expiry_bound(&env),
        "w-b drops out of workers.list",
        || async {
            let ids: Vec<String> = env
                .api
                .workers()
                .await
                .ok()?
                .into_iter()
                .map(|w| w.info.worker_id)
                .collect();
            (ids == ["w-a"]).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_list_pages_through_a_large_fleet() {
    let env = Env::start().await;
    let mut fleet = Vec::new();
    for i in 0..5 {
        let (id, pod, node) = (format!("w-{i}"), format!("pod-{i}"), format!("n{i}"));
        fleet.push(env.register(worker(&id, &pod, &node, "10.244.1.2")).await);
    }
    let mut seen = Vec::new();
    for offset in [0usize, 2, 4, 6] {
        let req = ListWorkersRequest {
            offset: Some(offset as u32),
            limit: Some(2),
        };
        let page = env.api.workers_page(&req).await.expect("workers.list");
        assert_eq!(page.total, 5);
        assert_eq!(
            page.workers.len(),
            [2, 2, 1, 0][offset / 2],
            "page at {offset}"
        );
        seen.extend(page.workers.into_iter().map(|w| w.info.worker_id));
    }
    let all: Vec<String> = fleet.iter().map(|w| w.info.worker_id.clone()).collect();
    assert_eq!(seen, all, "every worker once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_key_expired_is_offline_not_unknown() {
    let env = Env::start().await;
    let _live = env
        .register(worker("w-live", "pod-live", "n1", "10.244.1.2"))
        .await;
    let mut gone = env
        .register(worker("w-gone", "pod-gone", "n2", "10.244.2.2"))
        .await;
    gone.listen().await;
    gone.stop_heartbeat();
    eventually(
        expiry_bound(&env),
        "w-gone drops out of workers.list",
        || async {
            let ws = env.api.workers().await.ok()?;
            (!ws.iter().any(|w| w.info.worker_id == "w-gone")).then_some(())
        },
    )
    .await;
    let mut observed = observe_jobs(&env).await;

    for name in ["w-gone", "pod-gone"] {
        let err = env.api.submit(vec![noop(name)]).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::WorkerOffline), "{name}: {err}");
        let field = err.api_error().and_then(|e| e.field);
        assert_eq!(field.as_deref(), Some("jobs[0].source"), "{err}");
    }
    let ping_gone = spec(
        json!({"source": "pod-live", "target": {"worker": "pod-gone"},
                                "params": {"kind": "ping"}}),
    );
    let err = env.api.submit(vec![ping_gone]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::WorkerOffline), "{err}");
    let field = err.api_error().and_then(|e| e.field);
    assert_eq!(field.as_deref(), Some("jobs[0].target.worker"));
    // Never seen at all: unknown.
    let err = env.api.submit(vec![noop("w-never")]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownWorker), "{err}");

    assert_quiet(&mut observed).await;
    assert!(gone.drain().is_empty());
    assert!(env.api.list(&all_jobs()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_key_expires_is_worker_lost() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;

    w.stop_heartbeat();
    let rec = env
        .wait_state(id, JobState::WorkerLost, lost_bound(&env))
        .await;
    assert!(rec.finished_at_ms.is_some());
    assert!(
        rec.message.as_deref().unwrap_or("").contains("w1"),
        "{rec:?}"
    );
}

/// A dispatcher with a long grace before `worker_lost`, and worker w1 (pod-1) running one noop.
async fn one_dispatched_job_and_a_long_grace() -> (Env, WorkerInfo, FakeWorker, Uuid) {
    let env = Env::start_with(DispatcherConfig {
        lost_grace: Duration::from_secs(20),
        ..test_config()
    })
    .await;
    let info = worker("w1", "pod-1", "n1", "10.244.1.2");
    let mut w = env.register(info.clone()).await;
    w.listen().await;
    let id = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(w.next_command(SOON).await).job_id, id);
    env.wait_state(id, JobState::Dispatched, SOON).await;
    (env, info, w, id)
}

/// A broker restart can let a live worker's key expire. The same worker instance registering
/// again within the grace keeps its job, whose result then ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_key_expired_and_that_comes_back_in_the_grace_keeps_its_jobs() {
    let (env, info, mut w, id) = one_dispatched_job_and_a_long_grace().await;
    w.stop_heartbeat();
    eventually(
        expiry_bound(&env),
        "w1 drops out of workers.list",
        || async { env.api.workers().await.ok()?.is_empty().then_some(()) },
    )
    .await;
    let _back = env.register(info).await;
    assert_eq!(env.api.get(id).await.unwrap().state, JobState::Dispatched);

    env.publish_result(&outcome(id, "w1", OutcomeStatus::Succeeded))
        .await;
    env.wait_state(id, JobState::Succeeded, SOON).await;
}

/// A new instance of a worker (another `started_at_ms`) means the old one died: the jobs it had
/// accepted end `worker_lost` at once, without waiting for a key to expire, and new jobs go to
/// the new instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_loses_what_its_old_instance_accepted() {
    let (env, info, old, id) = one_dispatched_job_and_a_long_grace().await;
    drop(old); // stops its heartbeat and its subscription
    let mut new = env
        .register(WorkerInfo {
            started_at_ms: info.started_at_ms + 1_000,
            ..info
        })
        .await;
    new.listen().await;
    let rec = env.wait_state(id, JobState::WorkerLost, SOON).await;
    let msg = rec.message.unwrap_or_default();
    assert!(msg.contains("restarted"), "{msg}");

    let next = env.api.submit_one(noop("pod-1")).await.unwrap();
    assert_eq!(run_of(new.next_command(SOON).await).job_id, next);
    env.wait_state(next, JobState::Dispatched, SOON).await;
}

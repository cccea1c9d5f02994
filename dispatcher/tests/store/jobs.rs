//! Inserting, reading and listing jobs; the retention window.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserted_jobs_are_queued_with_their_fields_and_listable_by_filters() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    // Oldest first: a (w1→w2), b (w2→w3), c (noop on w3), d (w1→w3).
    let a = ping_job("w1", "w2", 40_000);
    let b = ping_job("w2", "w3", 30_000);
    let c = noop_job("w3", 20_000);
    let d = ping_job("w1", "w3", 10_000);
    store
        .insert(&[a.clone(), b.clone(), c.clone(), d.clone()])
        .await
        .unwrap();

    let rec = store.get(a.job_id).await.unwrap().expect("a is stored");
    assert_eq!(rec.job_id, a.job_id);
    assert_eq!(rec.state, JobState::Queued);
    assert_eq!(rec.params, a.params);
    assert_eq!(rec.source_worker, "w1");
    assert_eq!(rec.target, a.target);
    assert_eq!(rec.target_ip, Some("10.244.1.7".parse().unwrap()));
    assert_eq!(rec.target_worker.as_deref(), Some("w2"));
    assert_eq!(rec.created_at_ms, a.created_at_ms);
    assert_eq!(rec.deadline_at_ms, a.deadline_at_ms);
    assert_eq!(rec.attempts, 0);
    assert_eq!(
        (rec.dispatched_at_ms, rec.started_at_ms, rec.finished_at_ms),
        (None, None, None)
    );
    assert!(rec.result.is_none() && rec.reason.is_none() && rec.message.is_none());
    let rec_c = store.get(c.job_id).await.unwrap().expect("c is stored");
    assert_eq!((rec_c.target, rec_c.target_worker), (None, None));
    let (new_job, state) = store.get_new_job(b.job_id).await.unwrap().unwrap();
    assert_eq!((new_job, state), (b.clone(), JobState::Queued));
    assert_eq!(store.get(Uuid::now_v7()).await.unwrap(), None);

    let all = store.list(&ListJobsRequest::default()).await.unwrap();
    assert_eq!(
        ids(&all),
        vec![d.job_id, c.job_id, b.job_id, a.job_id],
        "newest first"
    );
    let mut active = store.active().await.unwrap();
    active.sort();
    let mut expected = vec![a.job_id, b.job_id, c.job_id, d.job_id];
    expected.sort();
    assert_eq!(active, expected);

    // By worker: as source or as target.
    let q = |w: &str| ListJobsRequest {
        worker: Some(w.into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&q("w1")).await.unwrap()),
        vec![d.job_id, a.job_id]
    );
    assert_eq!(
        ids(&store.list(&q("w2")).await.unwrap()),
        vec![b.job_id, a.job_id]
    );
    assert_eq!(
        ids(&store.list(&q("w3")).await.unwrap()),
        vec![d.job_id, c.job_id, b.job_id]
    );
    assert!(store.list(&q("nobody")).await.unwrap().is_empty());

    // By time window (inclusive bounds on the creation time).
    let window = ListJobsRequest {
        since_ms: Some(b.created_at_ms),
        until_ms: Some(c.created_at_ms),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&window).await.unwrap()),
        vec![c.job_id, b.job_id]
    );
    let since = ListJobsRequest {
        since_ms: Some(c.created_at_ms + 1),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&since).await.unwrap()), vec![d.job_id]);
    let until = ListJobsRequest {
        until_ms: Some(a.created_at_ms),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&until).await.unwrap()), vec![a.job_id]);

    // Limit keeps the newest.
    let limit = ListJobsRequest {
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&limit).await.unwrap()),
        vec![d.job_id, c.job_id]
    );

    // By state, alone and combined with a worker.
    let tr = Transition {
        attempts: Some(1),
        dispatched_at_ms: Some(now_ms()),
        ..Transition::to(JobState::Dispatched)
    };
    assert_eq!(store.transition(b.job_id, &tr).await.unwrap(), Applied::Yes);
    assert_eq!(store.transition(d.job_id, &tr).await.unwrap(), Applied::Yes);
    assert_eq!(
        by_state(&store, JobState::Dispatched).await,
        vec![d.job_id, b.job_id]
    );
    assert_eq!(
        by_state(&store, JobState::Queued).await,
        vec![c.job_id, a.job_id]
    );
    let w3_dispatched = ListJobsRequest {
        worker: Some("w3".into()),
        state: Some(JobState::Dispatched),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&w3_dispatched).await.unwrap()),
        vec![d.job_id, b.job_id]
    );
    let w1_queued_limit1 = ListJobsRequest {
        worker: Some("w1".into()),
        state: Some(JobState::Queued),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(
        ids(&store.list(&w1_queued_limit1).await.unwrap()),
        vec![a.job_id]
    );
}

/// An address target: read back with its resolved fields, indexed under its source only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_target_is_stored_resolved_and_indexed_under_its_source() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let ip: std::net::IpAddr = "10.99.0.5".parse().unwrap();
    let mut job = ping_job("w1", "w2", 100);
    job.target = Some(Target::Address(ip));
    job.resolved = Some(ResolvedTarget {
        ip,
        port: 5201,
        worker: None,
        node: "addr:10.99.0.5".into(),
    });
    store.insert(std::slice::from_ref(&job)).await.unwrap();

    let (back, _) = store.get_new_job(job.job_id).await.unwrap().unwrap();
    assert_eq!(back, job);
    let rec = store.get(job.job_id).await.unwrap().unwrap();
    assert_eq!((rec.target_ip, rec.target_worker), (Some(ip), None));
    let by = |w: &str| ListJobsRequest {
        worker: Some(w.into()),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&by("w1")).await.unwrap()), vec![job.job_id]);
    assert!(store.list(&by("w2")).await.unwrap().is_empty());
}

/// `worker` + `state` together: the matching job is older than ten newer jobs of that worker in
/// another state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_by_worker_and_state_finds_older_matches() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let old = noop_job("w1", 60_000);
    let newer: Vec<NewJob> = (0..15).map(|i| noop_job("w1", 30_000 - i * 100)).collect();
    store.insert(std::slice::from_ref(&old)).await.unwrap();
    store.insert(&newer).await.unwrap();
    for j in &newer {
        let t = Transition::to(JobState::Dispatched);
        assert_eq!(store.transition(j.job_id, &t).await.unwrap(), Applied::Yes);
    }
    let q = ListJobsRequest {
        worker: Some("w1".into()),
        state: Some(JobState::Queued),
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(ids(&store.list(&q).await.unwrap()), vec![old.job_id]);
}

/// Every index is "trimmed to the retention window" (module docs), the per-worker ones too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_older_than_the_retention_leave_every_index() {
    let redis = RedisServer::start();
    let store = Store::connect(&redis.url(), Duration::from_secs(1))
        .await
        .unwrap();
    let old = ping_job("w1", "w2", 5_000);
    let fresh = ping_job("w1", "w2", 0);
    store.insert(std::slice::from_ref(&old)).await.unwrap();
    store.insert(std::slice::from_ref(&fresh)).await.unwrap();

    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for key in [
        "podperf:jobs",
        "podperf:jobs:state:queued",
        "podperf:jobs:worker:w1",
        "podperf:jobs:worker:w2",
    ] {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(members, vec![fresh.job_id.to_string()], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_within_bytes_stops_at_the_budget_and_names_a_record_too_large_alone() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    let jobs: Vec<_> = (1..=40).map(|i| noop_job("w1", 1_000 * i)).collect();
    store.insert(&jobs).await.unwrap();
    let q = ListJobsRequest::default();
    let all = store.list(&q).await.unwrap();
    assert_eq!(all.len(), 40);
    let size = |r: &JobRecord| serde_json::to_vec(r).unwrap().len() + 1;

    // Room for the newest three and part of a fourth.
    let budget = all[..3].iter().map(size).sum::<usize>() + size(&all[3]) / 2;
    let page = store.list_within(&q, budget).await.unwrap();
    assert_eq!(ids(&page.jobs), ids(&all[..3]));
    assert!(page.truncated && page.too_large.is_none(), "{page:?}");

    let page = store.list_within(&q, 10).await.unwrap();
    assert!(page.jobs.is_empty() && page.truncated, "{page:?}");
    assert_eq!(page.too_large, Some((all[0].job_id, size(&all[0]))));

    let page = store.list_within(&q, usize::MAX - 1).await.unwrap();
    assert_eq!(ids(&page.jobs), ids(&all));
    assert!(!page.truncated && page.too_large.is_none());
}

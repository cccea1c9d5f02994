//! Each role's credential against a real nats-server running `auth.conf`.

mod common;

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use podperf_broker_tests::password;
use podperf_testkit::NatsServer;

use common::{assert_silent, connect, create_bucket_and_stream, server, BUCKET};

async fn connect_err(nats: &NatsServer, opts: async_nats::ConnectOptions) -> String {
    match opts.connect(nats.url()).await {
        Ok(_) => panic!("the connection was accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn anonymous_and_wrong_password_connections_are_refused() {
    let nats = server();
    let err = connect_err(&nats, async_nats::ConnectOptions::new()).await;
    assert!(err.contains("authorization"), "{err}");
    let opts = async_nats::ConnectOptions::with_user_and_password("worker".into(), "nope".into());
    let err = connect_err(&nats, opts).await;
    assert!(err.contains("authorization"), "{err}");
}

#[tokio::test]
async fn worker_cannot_call_the_api_nor_publish_jobs() {
    let nats = server();
    let admin = connect(&nats, "admin").await.client;
    let mut api = admin.subscribe("podperf.api.>").await.unwrap();
    let mut jobs = admin.subscribe("podperf.jobs.>").await.unwrap();
    admin.flush().await.unwrap();
    let mut worker = connect(&nats, "worker").await;

    let req = worker
        .client
        .request("podperf.api.jobs.submit", "[]".into());
    let res = tokio::time::timeout(Duration::from_secs(2), req).await;
    assert!(!matches!(res, Ok(Ok(_))), "the API request got an answer");
    worker.expect_violation("podperf.api.jobs.submit").await;
    assert_silent(&mut api, "a worker reached the API").await;

    worker
        .client
        .publish("podperf.jobs.x", "{}".into())
        .await
        .unwrap();
    worker.client.flush().await.unwrap();
    worker.expect_violation("podperf.jobs.x").await;
    assert_silent(&mut jobs, "a worker sent a job").await;

    // Nor can it use JetStream beyond opening the bucket, e.g. delete the results stream.
    worker
        .client
        .publish("$JS.API.STREAM.DELETE.PODPERF_RESULTS", "".into())
        .await
        .unwrap();
    worker
        .expect_violation("$JS.API.STREAM.DELETE.PODPERF_RESULTS")
        .await;
}

/// Replies and JetStream acks go to per-role inbox prefixes: a worker's credential cannot read
/// what the CLI or the dispatcher are answered (API replies, JetStream API replies).
#[tokio::test]
async fn worker_cannot_read_the_other_roles_replies() {
    let nats = server();
    let mut worker = connect(&nats, "worker").await;
    for inbox in ["_INBOX.>", "_INBOX_cli.>", "_INBOX_dispatcher.>", ">"] {
        let _sub = worker.client.subscribe(inbox).await.unwrap();
        worker.client.flush().await.unwrap();
        worker.expect_violation(inbox).await;
    }
    // Its own inbox works (this is where its JetStream acks arrive).
    let mut own = worker.client.subscribe("_INBOX_worker.x").await.unwrap();
    worker.client.flush().await.unwrap();
    let admin = connect(&nats, "admin").await.client;
    admin
        .publish("_INBOX_worker.x", "ack".into())
        .await
        .unwrap();
    admin.flush().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), own.next()).await;
    assert_eq!(&got.unwrap().unwrap().payload[..], b"ack");
}

#[tokio::test]
async fn worker_can_put_and_delete_its_key_and_publish_results_with_an_ack() {
    let nats = server();
    let admin = connect(&nats, "admin").await.client;
    let admin_kv = create_bucket_and_stream(&admin).await;
    let mut jobs_sub = connect(&nats, "worker").await;
    let worker = jobs_sub.client.clone();
    let js = jetstream::new(worker.clone());

    let kv = js.get_key_value(BUCKET).await.expect("open the bucket");
    kv.put("w1", "{}".into()).await.expect("put");
    assert_eq!(
        admin_kv.get("w1").await.unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    kv.delete("w1").await.expect("delete");
    assert_eq!(admin_kv.get("w1").await.unwrap(), None);

    for subject in ["podperf.events.j1", "podperf.results.j1"] {
        let ack = js.publish(subject, "{}".into()).await.expect("publish");
        let ack = ack.await.expect("JetStream ack");
        assert_eq!(ack.stream, "PODPERF_RESULTS");
    }

    // It takes jobs on its subject and answers the dispatcher's request.
    let mut jobs = worker.subscribe("podperf.jobs.w1").await.unwrap();
    worker.flush().await.unwrap();
    let dispatcher = connect(&nats, "dispatcher").await.client;
    let answer = tokio::spawn(async move {
        let msg = jobs.next().await.expect("a job");
        worker
            .publish(msg.reply.expect("a reply subject"), "accepted".into())
            .await
            .unwrap();
        worker.flush().await.unwrap();
    });
    let reply = dispatcher
        .request("podperf.jobs.w1", "job".into())
        .await
        .unwrap();
    assert_eq!(&reply.payload[..], b"accepted");
    answer.await.unwrap();
    assert!(
        jobs_sub.errors.try_recv().is_err(),
        "the worker hit a permission error"
    );
}

#[tokio::test]
async fn cli_cannot_publish_results_or_events_nor_write_the_bucket() {
    let nats = server();
    let admin = connect(&nats, "admin").await.client;
    let admin_kv = create_bucket_and_stream(&admin).await;
    let mut watched = admin.subscribe("podperf.>").await.unwrap();
    admin.flush().await.unwrap();
    let mut cli = connect(&nats, "cli").await;

    for subject in ["podperf.results.x", "podperf.events.x", "podperf.jobs.x"] {
        cli.client.publish(subject, "{}".into()).await.unwrap();
        cli.client.flush().await.unwrap();
        cli.expect_violation(subject).await;
    }
    assert_silent(&mut watched, "the cli published").await;

    cli.client
        .publish("$KV.podperf-workers.fake", "{}".into())
        .await
        .unwrap();
    cli.client.flush().await.unwrap();
    cli.expect_violation("$KV.podperf-workers.fake").await;
    assert_eq!(admin_kv.get("fake").await.unwrap(), None);

    // Not even the bucket's stream info: the JetStream API is closed to it.
    let js = jetstream::new(cli.client.clone());
    let open = tokio::time::timeout(Duration::from_secs(2), js.get_key_value(BUCKET)).await;
    assert!(!matches!(open, Ok(Ok(_))), "the cli opened the bucket");
    cli.expect_violation("$JS.API.STREAM.INFO.KV_podperf-workers")
        .await;
}

#[tokio::test]
async fn cli_can_call_the_api_and_follow_results() {
    let nats = server();
    let admin = connect(&nats, "admin").await.client;
    create_bucket_and_stream(&admin).await;

    // A stand-in for the dispatcher's API, with the dispatcher's credential.
    let dispatcher = connect(&nats, "dispatcher").await.client;
    let mut api = dispatcher.subscribe("podperf.api.>").await.unwrap();
    dispatcher.flush().await.unwrap();
    let responder = tokio::spawn(async move {
        let msg = api.next().await.expect("an API request");
        let reply = msg.reply.expect("a reply subject");
        dispatcher
            .publish(reply, r#"{"ok":[]}"#.into())
            .await
            .unwrap();
        dispatcher
            .publish("podperf.done.j1", "succeeded".into())
            .await
            .unwrap();
        dispatcher.flush().await.unwrap();
    });

    let mut cli = connect(&nats, "cli").await;
    let mut results = cli.client.subscribe("podperf.results.>").await.unwrap();
    let mut events = cli.client.subscribe("podperf.events.>").await.unwrap();
    let mut done = cli.client.subscribe("podperf.done.j1").await.unwrap();
    cli.client.flush().await.unwrap();

    let reply = cli
        .client
        .request("podperf.api.workers.list", "{}".into())
        .await
        .expect("the API answers");
    assert_eq!(&reply.payload[..], br#"{"ok":[]}"#);
    responder.await.unwrap();
    assert_eq!(&done.next().await.unwrap().payload[..], b"succeeded");

    let worker = connect(&nats, "worker").await.client;
    let js = jetstream::new(worker);
    js.publish("podperf.events.j1", "started".into())
        .await
        .unwrap()
        .await
        .unwrap();
    js.publish("podperf.results.j1", "result".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(&events.next().await.unwrap().payload[..], b"started");
    assert_eq!(&results.next().await.unwrap().payload[..], b"result");
    assert!(
        cli.errors.try_recv().is_err(),
        "the cli hit a permission error"
    );

    // A cli credential may not listen to jobs.
    let _jobs = cli.client.subscribe("podperf.jobs.>").await.unwrap();
    cli.expect_violation("podperf.jobs.>").await;
    let _ = password("cli");
}

/// podperf-web's credential: the API and the live feeds on its own inbox; reading the results
/// stream and the liveness bucket (for /metrics; `binaries.rs` runs the real follower);
/// nothing a worker or the dispatcher does, no JetStream write, purge or delete, no other
/// role's replies.
#[tokio::test]
async fn web_can_call_the_api_and_follow_the_feeds_and_nothing_more() {
    let nats = server();
    let admin = connect(&nats, "admin").await.client;
    create_bucket_and_stream(&admin).await;
    let mut watched = admin.subscribe("podperf.>").await.unwrap();
    let dispatcher = connect(&nats, "dispatcher").await.client;
    let mut api = dispatcher.subscribe("podperf.api.>").await.unwrap();
    dispatcher.flush().await.unwrap();
    admin.flush().await.unwrap();

    let mut web = connect(&nats, "web").await;
    let mut results = web.client.subscribe("podperf.results.>").await.unwrap();
    let mut done = web.client.subscribe("podperf.done.>").await.unwrap();
    web.client.flush().await.unwrap();
    let responder = tokio::spawn(async move {
        let msg = api.next().await.expect("an API request");
        let reply = msg.reply.expect("a reply subject");
        assert!(reply.starts_with("_INBOX_web."), "{reply}");
        dispatcher
            .publish(reply, r#"{"ok":[]}"#.into())
            .await
            .unwrap();
        dispatcher
            .publish("podperf.done.j1", "rec".into())
            .await
            .unwrap();
        dispatcher.flush().await.unwrap();
    });
    let reply = web
        .client
        .request("podperf.api.workers.list", "{}".into())
        .await
        .expect("the API answers");
    assert_eq!(&reply.payload[..], br#"{"ok":[]}"#);
    responder.await.unwrap();
    assert_eq!(&done.next().await.unwrap().payload[..], b"rec");
    admin
        .publish("podperf.results.j1", "r".into())
        .await
        .unwrap();
    admin.flush().await.unwrap();
    assert_eq!(&results.next().await.unwrap().payload[..], b"r");
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), watched.next()).await {
    }
    assert!(web.errors.try_recv().is_err(), "web hit a permission error");

    for subject in [
        "podperf.results.x",
        "podperf.events.x",
        "podperf.jobs.x",
        "podperf.done.x",
        "$KV.podperf-workers.fake",
        "$JS.API.STREAM.DELETE.PODPERF_RESULTS",
        "$JS.API.STREAM.PURGE.PODPERF_RESULTS",
        "$JS.API.STREAM.MSG.DELETE.PODPERF_RESULTS",
        "$JS.API.STREAM.UPDATE.KV_podperf-workers",
        "$JS.API.CONSUMER.DELETE.PODPERF_RESULTS.podperf-dispatcher",
        "$JS.API.CONSUMER.DURABLE.CREATE.PODPERF_RESULTS.x",
        "$JS.API.CONSUMER.CREATE.KV_podperf-dispatchers",
        "$JS.ACK.PODPERF_RESULTS.x",
    ] {
        web.client.publish(subject, "{}".into()).await.unwrap();
        web.client.flush().await.unwrap();
        web.expect_violation(subject).await;
    }
    assert_silent(&mut watched, "web published").await;
    for subject in [
        "podperf.jobs.>",
        "podperf.api.>",
        "_INBOX_cli.>",
        "_INBOX.>",
        ">",
    ] {
        let _sub = web.client.subscribe(subject).await.unwrap();
        web.client.flush().await.unwrap();
        web.expect_violation(subject).await;
    }
}

/// The dispatcher replicas' lease bucket and their `podperf.dispatch.>` requests: the dispatcher
/// credential creates, renews (compare-and-set) and deletes the lease and reaches the leader; a
/// worker or cli credential can do neither.
#[tokio::test]
async fn only_dispatchers_hold_the_lease_and_reach_the_leader() {
    let nats = server();
    let mut dispatcher = connect(&nats, "dispatcher").await;
    let js = jetstream::new(dispatcher.client.clone());
    let kv = js
        .create_or_update_key_value(async_nats::jetstream::kv::Config {
            bucket: "podperf-dispatchers".into(),
            history: 1,
            max_age: Duration::from_secs(3),
            ..Default::default()
        })
        .await
        .expect("the dispatcher creates the lease bucket");
    let rev = kv
        .create("leader", "a".into())
        .await
        .expect("create the lease");
    let rev = kv
        .update("leader", "a".into(), rev)
        .await
        .expect("renew it");
    kv.put("replica.a", "{}".into()).await.expect("advertise");
    let keys: Vec<String> = kv.keys().await.unwrap().map(|k| k.unwrap()).collect().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    kv.delete_expect_revision("leader", Some(rev))
        .await
        .expect("release it");

    // One replica asks the leader (another dispatcher connection) to take up jobs.
    let leader = connect(&nats, "dispatcher").await.client;
    let mut adopt = leader.subscribe("podperf.dispatch.adopt").await.unwrap();
    leader.flush().await.unwrap();
    let answer = tokio::spawn(async move {
        let msg = adopt.next().await.expect("a request");
        leader
            .publish(msg.reply.unwrap(), "true".into())
            .await
            .unwrap();
        leader.flush().await.unwrap();
    });
    // Retried while the server reports no responders (the subscription may still be settling
    // on a loaded machine).
    let mut tries = 0;
    let reply = loop {
        match dispatcher
            .client
            .request("podperf.dispatch.adopt", "[]".into())
            .await
        {
            Ok(reply) => break reply,
            Err(e) if tries < 30 => {
                tries += 1;
                eprintln!("no answer yet ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the leader never answered: {e}"),
        }
    };
    assert_eq!(&reply.payload[..], b"true");
    answer.await.unwrap();
    assert!(
        dispatcher.errors.try_recv().is_err(),
        "the dispatcher hit a permission error"
    );

    for user in ["worker", "cli"] {
        let mut other = connect(&nats, user).await;
        for subject in ["$KV.podperf-dispatchers.leader", "podperf.dispatch.adopt"] {
            other.client.publish(subject, "x".into()).await.unwrap();
            other.client.flush().await.unwrap();
            other.expect_violation(subject).await;
        }
        let _sub = other.client.subscribe("podperf.dispatch.>").await.unwrap();
        other.client.flush().await.unwrap();
        other.expect_violation("podperf.dispatch.>").await;
    }
    assert!(
        kv.get("leader").await.unwrap().is_none(),
        "the lease was written"
    );
}

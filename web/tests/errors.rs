//! Every error code over HTTP, each caused for real: malformed bodies and parameters (400),
//! unknown ids and routes (404), an ambiguous worker (409), an oversized body (413), unknown
//! workers and disallowed addresses (422), a full queue (429), no dispatcher and no store (503),
//! a wait that runs out (504). Always the JSON envelope, never plain text.

mod common;

use std::time::Duration;

use common::{assert_error, config, noop, ping, Web};
use podperf_testkit::{Cluster, ClusterOpts, WorkerSpec};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn refusals_of_bad_input_and_unknown_things() {
    let web = Web::two_workers("127.0.0.111", "127.0.0.112").await;

    // 400 bad_request: not JSON, or not a job spec.
    for body in [
        "{not json",
        "[1,2",
        "\"a string\"",
        "{\"source\":\"pod-a\"}",
    ] {
        let got = web.post_raw("/api/v2/jobs", body).await;
        let err = assert_error(&got, 400, "bad_request");
        assert!(err["message"].as_str().unwrap().contains("body"), "{err}");
    }
    let got = web.post_raw("/api/v2/jobs", "{\"jobs\": 3}").await;
    assert_error(&got, 400, "bad_request");
    let got = web.post_raw("/api/v2/runs", "{\"mesh\": \"yes\"}").await;
    assert_error(&got, 400, "bad_request");

    // 400 invalid_param, naming the field.
    let err = assert_error(
        &web.post("/api/v2/jobs", &ping(0)).await,
        400,
        "invalid_param",
    );
    assert_eq!(err["field"], "jobs[0].params.count", "{err}");
    for (path, field) in [
        ("/api/v2/jobs/not-a-uuid", "id"),
        ("/api/v2/runs/42", "id"),
        ("/api/v2/jobs?state=done", "state"),
    ] {
        let err = assert_error(&web.get(path).await, 400, "invalid_param");
        assert_eq!(err["field"], field, "{path}: {err}");
    }
    assert_error(
        &web.get("/api/v2/jobs?limit=many").await,
        400,
        "invalid_param",
    );
    for wait in ["soon", "0s", "2h"] {
        let got = web
            .post(&format!("/api/v2/jobs?wait={wait}"), &noop(0))
            .await;
        let err = assert_error(&got, 400, "invalid_param");
        assert_eq!(err["field"], "wait");
    }

    // 404: unknown job, run, route.
    let nobody = uuid::Uuid::new_v4();
    assert_error(
        &web.get(&format!("/api/v2/jobs/{nobody}")).await,
        404,
        "not_found",
    );
    assert_error(
        &web.get(&format!("/api/v2/runs/{nobody}")).await,
        404,
        "not_found",
    );
    let cancel = web.request(Method::POST, &format!("/api/v2/jobs/{nobody}/cancel"));
    assert_error(&web.send(cancel).await, 404, "not_found");
    assert_error(&web.get("/api/v2/nothing").await, 404, "not_found");
    let del = web.request(Method::DELETE, "/api/v2/workers");
    assert_error(&web.send(del).await, 405, "method_not_allowed");

    // 409: a name matching two workers.
    let spec = json!({"source": "pod-", "params": {"kind": "noop"}});
    let err = assert_error(
        &web.post("/api/v2/jobs", &spec).await,
        409,
        "ambiguous_worker",
    );
    assert_eq!(err["field"], "jobs[0].source");

    // 422: no such worker; an address outside the allowed CIDRs.
    let spec = json!({"source": "nope", "params": {"kind": "noop"}});
    assert_error(
        &web.post("/api/v2/jobs", &spec).await,
        422,
        "unknown_worker",
    );
    let spec = json!({"source": "pod-a", "target": {"address": "192.0.2.1"},
                      "params": {"kind": "ping"}});
    assert_error(
        &web.post("/api/v2/jobs", &spec).await,
        422,
        "address_not_allowed",
    );

    // 413: a body over 1 MiB.
    let big = "x".repeat(2 << 20);
    let got = web
        .send(web.request(Method::POST, "/api/v2/jobs").body(big))
        .await;
    assert_error(&got, 413, "payload_too_large");

    // 504: the job outlives the wait (and goes on).
    let got = web.post("/api/v2/jobs?wait=300ms", &noop(3_000)).await;
    let err = assert_error(&got, 504, "wait_timeout");
    assert!(
        err["message"].as_str().unwrap().contains("/api/v2/jobs/"),
        "{err}"
    );
}

#[tokio::test]
async fn a_full_queue_is_429_and_no_dispatcher_or_store_is_503() {
    let opts = ClusterOpts {
        dispatcher_env: vec![("PODPERF_MAX_QUEUED".into(), "1".into())],
        ..ClusterOpts::default()
    };
    let mut c = Cluster::start(opts).await;
    c.add_worker(WorkerSpec::new("pod-a", "node-1", "127.0.0.113").max_jobs(1));
    c.wait_workers(&["pod-a"], Duration::from_secs(20)).await;
    let mut web = Web::serve(c, config()).await;

    let (st, _) = web.post("/api/v2/jobs", &noop(30_000)).await;
    assert_eq!(st, 202);
    assert_error(&web.post("/api/v2/jobs", &noop(0)).await, 429, "busy");

    // Redis gone: the store is unavailable.
    web.cluster.redis.kill();
    let nobody = uuid::Uuid::new_v4();
    let got = web.get(&format!("/api/v2/jobs/{nobody}")).await;
    assert_error(&got, 503, "store_unavailable");

    // The dispatcher gone: nobody answers; not ready.
    drop(web.cluster.dispatcher.take());
    assert_error(&web.get("/api/v2/workers").await, 503, "no_dispatcher");
    let (st, body) = web.get("/readyz").await;
    assert_eq!(st, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_dispatcher");
    let res = web.http.get(web.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the process itself is up");
    web.stop();
}

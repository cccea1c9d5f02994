//! `Idempotency-Key` on the POSTs that create jobs, against a real system: a retry with the key
//! is answered the first submit's ids and stores nothing; another body with the key is refused
//! (422 `submit_id_reused`); a key that is not a UUID is refused (400) and stores nothing.

mod common;

use common::{assert_error, noop, Web};
use reqwest::Method;
use serde_json::{json, Value};

const KEY: &str = "idempotency-key";

async fn post_keyed(
    web: &Web,
    path: &str,
    key: &str,
    body: &Value,
) -> (reqwest::StatusCode, Value) {
    let req = web.request(Method::POST, path).header(KEY, key).json(body);
    web.send(req).await
}

/// How many jobs the store lists.
async fn stored(web: &Web) -> usize {
    let (st, list) = web.get("/api/v2/jobs?limit=1000").await;
    assert_eq!(st, 200, "{list}");
    list["jobs"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_stores_its_jobs_once() {
    let web = Web::two_workers("127.0.0.111", "127.0.0.112").await;
    let key = uuid::Uuid::new_v4().to_string();
    let batch = json!({"jobs": [noop(50), noop(0)]});

    let (st, first) = post_keyed(&web, "/api/v2/jobs", &key, &batch).await;
    assert_eq!(st, 202, "{first}");
    let (st, again) = post_keyed(&web, "/api/v2/jobs", &key, &batch).await;
    assert_eq!(st, 202, "{again}");
    assert_eq!(
        again["job_ids"], first["job_ids"],
        "the retry gets the first ids"
    );
    // A retry that waits: the records of the first submit's jobs.
    let (st, done) = post_keyed(&web, "/api/v2/jobs?wait=20s", &key, &batch).await;
    assert_eq!(st, 200, "{done}");
    let ids: Vec<&Value> = done["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["job_id"])
        .collect();
    let first_ids: Vec<&Value> = first["job_ids"].as_array().unwrap().iter().collect();
    assert_eq!(ids, first_ids);
    assert_eq!(stored(&web).await, 2, "one batch stored");

    // The key with another body.
    let other = json!({"jobs": [noop(51)]});
    let got = post_keyed(&web, "/api/v2/jobs", &key, &other).await;
    let err = assert_error(&got, 422, "submit_id_reused");
    assert_eq!(err["field"], "submit_id", "{err}");
    // Not a UUID, or at odds with the body's submit_id: 400, nothing stored.
    let got = post_keyed(&web, "/api/v2/jobs", "retry-1", &noop(0)).await;
    let err = assert_error(&got, 400, "invalid_param");
    assert_eq!(err["field"], "Idempotency-Key", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("retry-1"),
        "{err}"
    );
    let body = json!({"jobs": [noop(0)], "submit_id": uuid::Uuid::new_v4()});
    let got = post_keyed(&web, "/api/v2/jobs", &key, &body).await;
    assert_error(&got, 400, "invalid_param");
    assert_eq!(stored(&web).await, 2, "no refused POST stored anything");
    // Without a key, each POST is a new submit.
    for _ in 0..2 {
        let (st, acc) = web.post("/api/v2/jobs", &noop(0)).await;
        assert_eq!(st, 202, "{acc}");
    }
    assert_eq!(stored(&web).await, 4);
}

#[tokio::test]
async fn a_retried_run_start_with_its_idempotency_key_starts_one_run() {
    let web = Web::two_workers("127.0.0.113", "127.0.0.114").await;
    let key = uuid::Uuid::new_v4().to_string();
    let req = json!({"samples": 1, "ping_count": 1, "iperf3_duration_s": 1,
                     "traceroute": false, "latency": false, "mtu": false});
    let (st, first) = post_keyed(&web, "/api/v2/runs", &key, &req).await;
    assert_eq!(st, 202, "{first}");
    let (st, again) = post_keyed(&web, "/api/v2/runs", &key, &req).await;
    assert_eq!(st, 202, "{again}");
    assert_eq!(again, first, "the retry gets the first run");
    let (st, runs) = web.get("/api/v2/runs").await;
    assert_eq!(st, 200, "{runs}");
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    let other = json!({"samples": 2, "traceroute": false, "latency": false, "mtu": false});
    let got = post_keyed(&web, "/api/v2/runs", &key, &other).await;
    assert_error(&got, 422, "submit_id_reused");
}

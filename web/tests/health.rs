//! `GET`/`POST /api/v2/health` in front of a real system (testkit's cluster: nats-server,
//! redis-server, the dispatcher, loopback workers running the real fping), one of whose workers
//! cannot send: its fping is the real one told to send from an address this host does not have
//! (`-S 10.255.255.1`), so each of its sweeps fails ("cannot bind source address").

mod common;
mod health_common;

use std::time::Duration;

use common::{assert_error, Web};
use health_common::{broken_fping, cluster_with_a_mute_node};
use podperf_protocol::job::{Iperf3Params, JobParams, JobSpec, Target};
use podperf_testkit::eventually;
use serde_json::{json, Value};

fn findings(body: &Value) -> Vec<(String, String)> {
    body["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings: {body}"))
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_string();
            (s("finding"), s("node"))
        })
        .collect()
}

#[tokio::test]
async fn health_runs_a_round_on_post_and_get_answers_from_the_latest_round_seen() {
    let fping = broken_fping();
    let c = cluster_with_a_mute_node(&fping, "node-3").await;
    let mut web = Web::serve(c, common::config()).await;

    // The token rules of every v2 endpoint: nothing runs without it.
    for token in [None, Some("wrong")] {
        web.token = token.map(String::from);
        assert_error(&web.get("/api/v2/health").await, 401, "unauthorized");
        let got = web.post("/api/v2/health", &json!({})).await;
        assert_error(&got, 401, "unauthorized");
    }
    web.token = Some(common::TOKEN.into());

    // No round seen yet.
    let got = web.get("/api/v2/health").await;
    let err = assert_error(&got, 404, "no_round");
    assert!(err["message"].as_str().unwrap().contains("POST"), "{err}");

    // Bad input: a clear error naming the field, nothing run.
    for (body, field) in [
        (json!({"count": 0}), "count"),
        (json!({"interval_ms": 5}), "interval_ms"),
        (
            json!({"bandwidth_max_age_s": 604_801}),
            "bandwidth_max_age_s",
        ),
    ] {
        let got = web.post("/api/v2/health", &body).await;
        assert_eq!(assert_error(&got, 400, "invalid_param")["field"], field);
    }
    let got = web
        .post("/api/v2/health", &json!({"count": 2, "nope": 1}))
        .await;
    assert_error(&got, 400, "bad_request");

    // The two sound nodes between themselves: healthy.
    let two = json!({"count": 2, "interval_ms": 20, "from": ["pod-a", "pod-b"], "to": ["pod-a", "pod-b"]});
    let (st, body) = web.post("/api/v2/health", &two).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["healthy"], true, "{body}");
    assert_eq!(body["nodes"], 2, "{body}");
    assert_eq!(body["sweeps"], 2, "{body}");
    assert_eq!(body["round_age_s"], 0.0, "{body}");

    // The whole mesh: node-3's sweep fails, it reached nobody.
    let (st, body) = web
        .post("/api/v2/health", &json!({"count": 2, "interval_ms": 20}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["healthy"], false, "{body}");
    assert_eq!(findings(&body), [("cannot_send".into(), "node-3".into())]);
    assert_eq!(
        body["findings"][0]["message"],
        "node-3 cannot send: reaches 0 of 2 node pairs"
    );

    // That round (every live worker's sweep ended, one of them failed) is the latest seen.
    let latest = eventually(Duration::from_secs(20), "GET names node-3", || async {
        let (st, body) = web.get("/api/v2/health").await;
        (st == 200 && !findings(&body).is_empty()).then_some(body)
    })
    .await;
    assert_eq!(findings(&latest), [("cannot_send".into(), "node-3".into())]);
    assert_eq!(latest["sweeps"], 3, "{latest}");
    let age = latest["round_age_s"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&age), "{latest}");
    assert!(latest["round_completed_at_ms"].as_u64().unwrap() > 0);

    // Bandwidth: a 1 s TCP iperf3 test per ordered pair, then a batch of 60 noops created in
    // the same millisecond (more than a page of the look-up: it pages past them).
    let client = web.cluster.client().clone();
    let pods = ["pod-a", "pod-b", "pod-c"];
    let mut specs = Vec::new();
    for s in pods {
        for d in pods.iter().filter(|d| **d != s) {
            specs.push(JobSpec {
                family: None,
                source: s.into(),
                target: Some(Target::Worker((*d).into())),
                params: JobParams::Iperf3(Iperf3Params {
                    duration_s: 1,
                    ..Iperf3Params::default()
                }),
                timeout_s: None,
            });
        }
    }
    let noops = (0..60).map(|i| JobSpec {
        family: None,
        source: pods[i % 3].into(),
        target: None,
        params: JobParams::Noop(Default::default()),
        timeout_s: None,
    });
    for batch in [specs, noops.collect()] {
        let ids = client.submit(batch).await.expect("submitted");
        for id in ids {
            let rec = client
                .wait_past_deadline(id, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(rec.state.as_str(), "succeeded", "{rec:?}");
        }
    }
    let (st, body) = web
        .post("/api/v2/health", &json!({"count": 2, "interval_ms": 20}))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["bandwidth_pairs"], 6,
        "one per ordered node pair: {body}"
    );
    assert!(body.get("bandwidth_unavailable").is_none(), "{body}");
    // node-3 named already: its pairs are not judged for bandwidth (node-1 ↔ node-2 alone have
    // no baseline), so the finding stays the one.
    assert_eq!(findings(&body), [("cannot_send".into(), "node-3".into())]);
    // Without bandwidth.
    let (_, body) = web
        .post(
            "/api/v2/health",
            &json!({"count": 2, "interval_ms": 20, "bandwidth_max_age_s": 0}),
        )
        .await;
    assert_eq!(body["bandwidth_pairs"], 0, "{body}");
}

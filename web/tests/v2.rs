//! REST v2 against a real system: workers, jobs (one, a batch, waiting, listing, cancelling),
//! matrix runs with their report; the token rules.

mod common;

use std::time::Duration;

use common::{assert_error, noop, ping, Web, TOKEN};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn workers_jobs_and_cancel() {
    let web = Web::two_workers("127.0.0.101", "127.0.0.102").await;

    let (st, body) = web.get("/api/v2/workers").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["total"], 2);
    let pods: Vec<&str> = body["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pod_name"].as_str().unwrap())
        .collect();
    assert_eq!(pods, ["pod-a", "pod-b"]);
    let (st, page) = web.get("/api/v2/workers?offset=1&limit=1").await;
    assert_eq!(st, 200);
    assert_eq!(page["workers"][0]["pod_name"], "pod-b");

    // One spec, waited for: the terminal record with the measurement.
    let (st, rec) = web.post("/api/v2/jobs?wait=20s", &ping(2)).await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["state"], "succeeded", "{rec}");
    assert_eq!(rec["result"]["kind"], "ping");
    assert_eq!(rec["result"]["received"], 2);
    assert_eq!(rec["target_ip"], "127.0.0.102");
    let ping_id = rec["job_id"].as_str().unwrap().to_string();

    // Without wait: 202 and the id; then the record by id.
    let (st, acc) = web.post("/api/v2/jobs", &noop(0)).await;
    assert_eq!(st, 202, "{acc}");
    let id = acc["job_ids"][0].as_str().unwrap().to_string();
    let (st, rec) = web.get(&format!("/api/v2/jobs/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(rec["job_id"], id.as_str());
    assert_eq!(rec["params"]["kind"], "noop");

    // A batch, waited for: every record.
    let batch = json!({"jobs": [noop(200), noop(0)]});
    let (st, done) = web.post("/api/v2/jobs?wait=20s", &batch).await;
    assert_eq!(st, 200, "{done}");
    let states: Vec<&str> = done["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["succeeded", "succeeded"]);
    // In the order submitted, whichever ended first.
    assert_eq!(done["jobs"][0]["params"]["sleep_ms"], 200, "{done}");
    let (st, acc) = web.post("/api/v2/jobs", &batch).await;
    assert_eq!(st, 202);
    assert_eq!(acc["job_ids"].as_array().unwrap().len(), 2);

    // Listing by state and worker.
    let b = web.worker_id("pod-b");
    let (st, list) = web
        .get(&format!("/api/v2/jobs?state=succeeded&worker={b}&limit=10"))
        .await;
    assert_eq!(st, 200, "{list}");
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ping_id.as_str()], "only the ping touched pod-b");
    let (_, list) = web.get("/api/v2/jobs?limit=2").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2);

    // Cancel a long noop: the stored record says cancelled.
    let (_, acc) = web.post("/api/v2/jobs", &noop(60_000)).await;
    let id = acc["job_ids"][0].as_str().unwrap().to_string();
    let (st, rec) = web
        .send(web.request(Method::POST, &format!("/api/v2/jobs/{id}/cancel")))
        .await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["job_id"], id.as_str());
    let rec =
        podperf_testkit::eventually(Duration::from_secs(10), "the cancel is stored", || async {
            let (_, rec) = web.get(&format!("/api/v2/jobs/{id}")).await;
            (rec["state"] == "cancelled").then_some(rec)
        })
        .await;
    assert_eq!(rec["job_id"], id.as_str());
}

#[tokio::test]
async fn a_matrix_run_and_its_report() {
    let web = Web::two_workers("127.0.0.103", "127.0.0.104").await;
    let req = json!({"samples": 1, "ping_count": 2, "iperf3_duration_s": 1, "traceroute": false});
    let (st, started) = web.post("/api/v2/runs", &req).await;
    assert_eq!(st, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    assert!(started["pairs"].as_u64().unwrap() >= 1, "{started}");

    let (st, runs) = web.get("/api/v2/runs?limit=5").await;
    assert_eq!(st, 200);
    assert_eq!(runs["runs"][0]["run_id"], run_id.as_str());

    let what = "the run is finished";
    let report = podperf_testkit::eventually(Duration::from_secs(30), what, || async {
        let (st, r) = web.get(&format!("/api/v2/runs/{run_id}")).await;
        (st == 200 && r["progress"]["finished"] == true).then_some(r)
    })
    .await;
    assert_eq!(
        report["progress"]["jobs_succeeded"], report["progress"]["jobs"],
        "{report}"
    );
    let class = &report["classes"][0];
    assert_eq!(class["class"], "pod_cross_node", "{report}");
    assert!(
        class["rtt_avg_ms"]["median"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        class["tcp_bits_per_second"]["median"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert_eq!(report["pairs"][0]["source_pod"], "pod-a");

    // An empty body takes the defaults; a bad field is refused by the dispatcher.
    let bad = json!({"samples": 0});
    let err = assert_error(&web.post("/api/v2/runs", &bad).await, 400, "invalid_param");
    assert_eq!(err["field"], "samples", "{err}");
}

#[tokio::test]
async fn every_call_but_the_probes_needs_a_valid_token() {
    let mut web = Web::two_workers("127.0.0.105", "127.0.0.106").await;
    let paths = [
        (Method::GET, "/api/v2/workers"),
        (Method::GET, "/api/v2/jobs"),
        (Method::POST, "/api/v2/jobs"),
        (Method::GET, "/api/v2/runs"),
        (Method::GET, "/api/v2/events"),
        (Method::GET, "/api/v2/status"),
        (Method::GET, "/api/v2/openapi.json"),
    ];
    for token in [None, Some("wrong"), Some("test-token-1x")] {
        web.token = token.map(String::from);
        for (m, p) in &paths {
            let got = web.send(web.request(m.clone(), p)).await;
            assert_error(&got, 401, "unauthorized");
        }
        let res = web
            .request(Method::GET, "/api/v2/workers")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        // v1 answers in its own envelope.
        let (st, v1) = web.get("/api/v1/external/clients").await;
        assert_eq!(
            (st.as_u16(), v1["status"].as_i64()),
            (401, Some(-1)),
            "{v1}"
        );
    }
    // Either configured token opens it.
    for token in [TOKEN, "test-token-2"] {
        web.token = Some(token.into());
        let (st, _) = web.get("/api/v2/workers").await;
        assert_eq!(st, 200);
    }
    // The dispatchers' status, as `podperf -o json status` shows it: one leader, both stores up.
    let (st, status) = web.get("/api/v2/status").await;
    assert_eq!(st, 200, "{status}");
    let leaders = status["dispatchers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["role"] == "leader")
        .count();
    assert_eq!(leaders, 1, "{status}");
    assert!(status.get("queue_depth").is_some(), "{status}");
    // The probes need none.
    web.token = None;
    let res = web.http.get(web.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    let (st, ready) = web.get("/readyz").await;
    assert_eq!(st, 200, "{ready}");
    assert_eq!(ready["dispatcher"], "answers");
    // Nor does `/`: it sends a browser on to the page, which holds no data and asks for the token.
    let res = web.http.get(web.url("/")).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), res.url().path()),
        (200, "/ui/"),
        "GET / should end at the UI page"
    );
    assert!(res.text().await.unwrap().contains("podperf"));
}

//! `GET /api/v2/events` against a real system: job events, results and done notices, workers
//! joining and leaving, run progress, the `job`/`run` filters, the cap on streams, and the
//! shutdown ending open streams (in process, and the real binary on SIGTERM).

mod common;

use std::time::Duration;

use common::sse::SseReader;
use common::{assert_error, config, noop, Web};
use podperf_testkit::{ChildGuard, WorkerSpec};
use reqwest::Method;
use serde_json::json;

const WITHIN: Duration = Duration::from_secs(15);

async fn open(web: &Web, path: &str) -> SseReader {
    let res = web.request(Method::GET, path).send().await.unwrap();
    SseReader::new(res)
}

#[tokio::test]
async fn jobs_workers_and_runs_live() {
    let mut web = Web::two_workers("127.0.0.121", "127.0.0.122").await;
    let mut all = open(&web, "/api/v2/events").await;
    let first = all.next(WITHIN).await.unwrap();
    assert_eq!(
        (first.name.as_str(), first.data.as_str()),
        ("comment", "connected")
    );

    let (st, acc) = web.post("/api/v2/jobs", &noop(0)).await;
    assert_eq!(st, 202, "{acc}");
    let id = acc["job_ids"][0].as_str().unwrap().to_string();
    // Its event, result and done notice, each once (they travel on three subjects: their order
    // among each other is not fixed).
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        let ev = all.next(WITHIN).await.expect("the stream goes on");
        if ev.name != "comment" && ev.json()["job_id"] == id.as_str() {
            assert!(
                seen.insert(ev.name.clone(), ev.json()).is_none(),
                "{} twice",
                ev.name
            );
        }
    }
    assert_eq!(seen["job_event"]["event"], "started");
    assert_eq!(seen["job_result"]["status"], "succeeded");
    assert_eq!(seen["job_done"]["state"], "succeeded");

    // One job: its record first, then only its events.
    let (_, acc) = web.post("/api/v2/jobs", &noop(500)).await;
    let id2 = acc["job_ids"][0].as_str().unwrap().to_string();
    let mut one = open(&web, &format!("/api/v2/events?job={id2}")).await;
    let first = one.next(WITHIN).await.unwrap();
    assert_eq!(first.name, "job");
    assert_eq!(first.json()["job_id"], id2.as_str());
    let done = one.wait_for("job_done", WITHIN, |_| true).await;
    assert_eq!(done["job_id"], id2.as_str(), "only that job's events");

    // A worker joins, then leaves.
    let i = web
        .cluster
        .add_worker(WorkerSpec::new("pod-c", "node-3", "127.0.0.123"));
    let joined = all
        .wait_for("worker_joined", WITHIN, |w| w["pod_name"] == "pod-c")
        .await;
    assert_eq!(joined["node_name"], "node-3");
    web.cluster.workers[i].proc.sigterm();
    all.wait_for("worker_left", WITHIN, |w| w["pod_name"] == "pod-c")
        .await;

    // A run: its progress, the first at once.
    let req = json!({"samples": 1, "ping_count": 1, "iperf3_duration_s": 1, "traceroute": false});
    let (st, started) = web.post("/api/v2/runs", &req).await;
    assert_eq!(st, 202, "{started}");
    let run = started["run_id"].as_str().unwrap().to_string();
    let mut progress = open(&web, &format!("/api/v2/events?run={run}")).await;
    let first = progress.next(WITHIN).await.unwrap();
    assert_eq!(first.name, "run_progress");
    assert_eq!(first.json()["run_id"], run.as_str());
    let end = progress
        .wait_for("run_progress", Duration::from_secs(30), |p| {
            p["finished"] == true
        })
        .await;
    assert_eq!(end["jobs_done"], end["jobs"]);

    // Unknown ids and both filters at once are refused before the stream starts.
    let nobody = uuid::Uuid::new_v4();
    let got = web.get(&format!("/api/v2/events?job={nobody}")).await;
    assert_error(&got, 404, "not_found");
    let got = web
        .get(&format!("/api/v2/events?job={nobody}&run={nobody}"))
        .await;
    assert_error(&got, 400, "invalid_param");
    assert_error(&web.get("/api/v2/events?job=x").await, 400, "invalid_param");

    // Shutting down ends every open stream, and the server returns.
    web.stop();
    for reader in [&mut all, &mut one, &mut progress] {
        while let Some(ev) = reader.next(WITHIN).await {
            assert_ne!(ev.name, "lagged");
        }
    }
    let served = web.served.take().unwrap();
    let ended = tokio::time::timeout(WITHIN, served).await;
    ended.expect("the server returned").unwrap().unwrap();
}

#[tokio::test]
async fn streams_are_capped() {
    let cluster = podperf_testkit::Cluster::start(Default::default()).await;
    let conf = podperf_web::WebConfig {
        max_event_streams: 2,
        ..config()
    };
    let web = Web::serve(cluster, conf).await;
    let a = open(&web, "/api/v2/events").await;
    let _b = open(&web, "/api/v2/events").await;
    let err = assert_error(&web.get("/api/v2/events").await, 429, "busy");
    assert!(err["message"].as_str().unwrap().contains('2'), "{err}");
    drop(a);
    let what = "a closed stream frees its place";
    podperf_testkit::eventually(WITHIN, what, || async {
        let res = web
            .request(Method::GET, "/api/v2/events")
            .send()
            .await
            .ok()?;
        (res.status() == 200).then_some(())
    })
    .await;
}

/// The binary: SIGTERM while a client follows the events ends the stream and the process (exit 0).
#[tokio::test]
async fn the_binary_stops_on_sigterm_with_a_stream_open() {
    let cluster = podperf_testkit::Cluster::start(Default::default()).await;
    let port = podperf_testkit::free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_podperf-web"));
    cmd.env("PODPERF_NATS_URL", cluster.nats_url())
        .env("PODPERF_WEB_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("PODPERF_WEB_TOKEN");
    let mut proc = ChildGuard::spawn(cmd, "podperf-web");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    podperf_testkit::eventually(WITHIN, "podperf-web is ready", || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        (res.status() == 200).then_some(())
    })
    .await;
    assert!(proc.log().contains("loopback only"), "{}", proc.log());

    let res = http
        .get(format!("{base}/api/v2/events"))
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(res);
    assert_eq!(sse.next(WITHIN).await.unwrap().name, "comment");
    proc.sigterm();
    assert!(sse.next(WITHIN).await.is_none(), "the stream ends");
    let status = proc.wait_timeout(WITHIN).expect("the process exits");
    assert!(status.success(), "{status:?}\n{}", proc.log());
}

/// Without a token, a non-loopback address is refused with exit 64, naming the variable.
#[test]
fn no_token_refuses_a_public_address() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podperf-web"))
        .env("PODPERF_WEB_LISTEN", "0.0.0.0:8080")
        .env_remove("PODPERF_WEB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PODPERF_WEB_TOKEN"), "{err}");
    assert!(err.contains("0.0.0.0:8080"), "{err}");
    // A bad flag is a usage error too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podperf-web"))
        .args(["--max-event-streams", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

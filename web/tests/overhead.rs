//! The HTTP API's overhead, measured (not asserted): a noop submitted and waited for through
//! `POST /api/v2/jobs?wait=` against the same through `podperf-client` directly, interleaved, on
//! one system. Benchmarks, so ignored by the test command (reported as skipped, not passed); they
//! print p50/p99 for BENCHMARKS.md:
//! `cargo test --release -p podperf-web --test overhead -- --ignored --nocapture --test-threads 1`
//! (after `cargo build --release -p podperf-dispatcher -p podperf-worker --bins`).

mod common;

use std::time::{Duration, Instant};

use common::{noop, Web};
use podperf_protocol::job::{JobParams, JobSpec, NoopParams};

const ROUNDS: usize = 400;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p podperf-web --test overhead -- --ignored --nocapture"]
async fn http_overhead_of_a_waited_noop() {
    let web = Web::two_workers("127.0.0.141", "127.0.0.142").await;
    let client = web.cluster.client().clone();
    let spec = JobSpec {
        family: None,
        source: "pod-a".into(),
        target: None,
        params: JobParams::Noop(NoopParams::default()),
        timeout_s: None,
    };
    let (mut http, mut direct, mut probe) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        // The HTTP round trip alone (no NATS): what any request costs.
        let t = Instant::now();
        let res = web.http.get(web.url("/healthz")).send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "ok");
        probe.push(t.elapsed());

        let t = Instant::now();
        let (st, rec) = web.post("/api/v2/jobs?wait=10s", &noop(0)).await;
        http.push(t.elapsed());
        assert_eq!(
            (st.as_u16(), rec["state"].as_str()),
            (200, Some("succeeded"))
        );

        let t = Instant::now();
        let id = client.submit_one(spec.clone()).await.unwrap();
        let rec = client.wait(id, Duration::from_secs(10)).await.unwrap();
        direct.push(t.elapsed());
        assert_eq!(rec.state.as_str(), "succeeded");
    }
    http.sort();
    direct.sort();
    probe.sort();
    println!(
        "noop submit+wait, {ROUNDS} each: HTTP p50 {:.3} ms p99 {:.3} ms; client p50 {:.3} ms \
         p99 {:.3} ms; added p50 {:.3} ms; GET /healthz p50 {:.3} ms",
        pct(&http, 0.5),
        pct(&http, 0.99),
        pct(&direct, 0.5),
        pct(&direct, 0.99),
        pct(&http, 0.5) - pct(&direct, 0.5),
        pct(&probe, 0.5)
    );
}

/// Events/s one podperf-web delivers to 100 connected SSE clients: a batch of noops, timed from
/// the submit until every client has seen every job's `job_done` (each job makes three events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release -p podperf-web --test overhead -- --ignored --nocapture"]
async fn sse_fan_out_to_100_clients() {
    const CLIENTS: usize = 100;
    const JOBS: usize = 300;
    let mut conf = common::config();
    conf.max_event_streams = CLIENTS;
    let mut c = podperf_testkit::Cluster::start(Default::default()).await;
    c.add_worker(podperf_testkit::WorkerSpec::new("pod-a", "node-1", "127.0.0.143").max_jobs(64));
    c.wait_workers(&["pod-a"], Duration::from_secs(20)).await;
    let web = Web::serve(c, conf).await;
    let mut readers = Vec::new();
    for _ in 0..CLIENTS {
        let res = web
            .request(reqwest::Method::GET, "/api/v2/events")
            .send()
            .await
            .unwrap();
        let mut r = common::sse::SseReader::new(res);
        assert_eq!(
            r.next(Duration::from_secs(10)).await.unwrap().name,
            "comment"
        );
        readers.push(r);
    }
    let t = Instant::now();
    let batch = serde_json::json!({"jobs": vec![noop(0); JOBS]});
    let (st, _) = web.post("/api/v2/jobs", &batch).await;
    assert_eq!(st, 202);
    let counts = futures::future::join_all(readers.into_iter().map(|mut r| async move {
        let (mut done, mut events) = (0, 0);
        while done < JOBS {
            let ev = r
                .next(Duration::from_secs(60))
                .await
                .expect("the stream goes on");
            assert_ne!(ev.name, "lagged", "a client fell behind");
            events += 1;
            done += usize::from(ev.name == "job_done");
        }
        events
    }))
    .await;
    let secs = t.elapsed().as_secs_f64();
    let delivered: usize = counts.iter().sum();
    println!(
        "SSE fan-out: {JOBS} noops, {CLIENTS} clients, {delivered} events delivered in {secs:.2} s \
         = {:.0} events/s (the jobs themselves: ≤ {:.0} jobs/s)",
        delivered as f64 / secs,
        JOBS as f64 / secs
    );
}

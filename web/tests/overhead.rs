//! The HTTP API's overhead, measured (not asserted): a noop submitted and waited for through
//! `POST /api/v2/jobs?wait=` against the same through `podperf-client` directly, interleaved, on
//! one system. Long: runs only with `PODPERF_LONG_TESTS=1`; prints p50/p99 for BENCHMARKS.md:
//! `PODPERF_LONG_TESTS=1 cargo test -p podperf-web --test overhead -- --nocapture`.

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
async fn http_overhead_of_a_waited_noop() {
    if std::env::var_os("PODPERF_LONG_TESTS").is_none() {
        eprintln!("skipped: set PODPERF_LONG_TESTS=1 to measure");
        return;
    }
    let web = Web::two_workers("127.0.0.141", "127.0.0.142").await;
    let client = web.cluster.client().clone();
    let spec = JobSpec {
        source: "pod-a".into(),
        target: None,
        params: JobParams::Noop(NoopParams::default()),
        timeout_s: None,
    };
    let (mut http, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
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
        assert!(rec.state.is_terminal());
    }
    http.sort();
    direct.sort();
    println!(
        "noop submit+wait, {ROUNDS} each: HTTP p50 {:.3} ms p99 {:.3} ms; client p50 {:.3} ms \
         p99 {:.3} ms; added p50 {:.3} ms",
        pct(&http, 0.5),
        pct(&http, 0.99),
        pct(&direct, 0.5),
        pct(&direct, 0.99),
        pct(&http, 0.5) - pct(&direct, 0.5)
    );
}

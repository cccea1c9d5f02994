//! The UI's figures in a real browser (BENCHMARKS.md): the overview's load with 1,000 workers,
//! and the heatmap's render at 100 nodes. Not timed assertions: the tests check what was
//! drawn and print the times.
//!
//! `cargo test -p podperf-web --test browser_bench -- --ignored --nocapture`

mod browser_driver;
mod common;

use std::time::Duration;

use browser_driver::Browser;
use common::{Web, TOKEN};
use podperf_protocol::worker::{Tool, ToolInfo, WorkerInfo};
use podperf_testkit::{Cluster, ClusterOpts};

const WORKERS: usize = 1000;

/// 1,000 workers as the dispatcher sees them: their entries in the liveness bucket (the
/// processes themselves are not needed to list them), on 100 nodes.
async fn simulated_workers(cluster: &Cluster) {
    let nats = async_nats::connect(cluster.nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(nats);
    let kv = js
        .get_key_value(podperf_protocol::names::WORKERS_BUCKET)
        .await
        .expect("the dispatcher made the bucket");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for i in 0..WORKERS {
        let info = WorkerInfo {
            worker_id: format!("sim-{i:04}"),
            pod_name: format!("podperf-worker-{i:04}"),
            pod_namespace: Some("podperf".into()),
            pod_ip: format!("10.{}.{}.{}", i / 250, i % 250, 10)
                .parse()
                .unwrap(),
            node_name: format!("node-{:03}", i % 100),
            node_ip: Some(
                format!("192.168.{}.{}", i % 100 / 250, i % 100 + 1)
                    .parse()
                    .unwrap(),
            ),
            pod_ips: vec![],
            node_ips: vec![],
            host_network: i % 10 == 0,
            tools: Tool::ALL
                .iter()
                .map(|&tool| ToolInfo {
                    tool,
                    available: true,
                    path: None,
                    version: Some("1.0".into()),
                })
                .collect(),
            iperf3_port: 5201,
            sockperf_port: 11111,
            max_concurrent_jobs: 8,
            started_at_ms: now,
            version: "0.1.0".into(),
        };
        kv.put(&info.worker_id, serde_json::to_vec(&info).unwrap().into())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p podperf-web --test browser_bench -- --ignored --nocapture"]
async fn overview_with_1000_workers_and_heatmap_at_100_nodes() {
    let opts = ClusterOpts {
        worker_ttl_s: Some(120),
        ..ClusterOpts::default()
    };
    let cluster = Cluster::start(opts).await;
    simulated_workers(&cluster).await;
    podperf_testkit::eventually(Duration::from_secs(30), "1,000 workers listed", || async {
        (cluster.client().workers().await.ok()?.len() == WORKERS).then_some(())
    })
    .await;
    let web = Web::serve(cluster, common::config()).await;
    let b = Browser::start().await;
    b.client.goto(&web.url("/ui/")).await.unwrap();
    b.js(&format!(
        "sessionStorage.setItem('podperf-token', {TOKEN:?}); return 1"
    ))
    .await;

    // Overview: navigation start → the table of 1,000 workers drawn (the page's own mark).
    let mut loads = Vec::new();
    for _ in 0..5 {
        b.client.refresh().await.unwrap();
        b.wait_js(
            "the overview lists 1,000 workers",
            "return document.querySelectorAll('#workers-table tr.worker').length === 1000",
        )
        .await;
        let ms = b.wait_js("the page marked the draw", "const m = performance.getEntriesByName('workers-drawn'); return m.length && m[0].startTime").await;
        loads.push(ms.as_f64().unwrap());
    }
    b.screenshot("bench-overview-1000").await;
    println!("overview with {WORKERS} workers: navigation → table drawn, ms: {loads:?}");

    // Heatmap: a mesh report of 100 nodes (9,900 cells) drawn by the page's own module.
    let script = r#"
        const done = arguments[arguments.length - 1];
        import('/ui/js/heatmap.js').then(async (hm) => {
          const rep = await import('/ui/js/report.js');
          const nodes = [...Array(100).keys()].map((i) => 'node-' + String(i).padStart(3, '0'));
          const pairs = [];
          for (const a of nodes) for (const b of nodes) if (a !== b) {
            const v = 0.1 + Math.random();
            pairs.push({ class: 'pod_cross_node', source_pod: 'p-' + a, target_pod: 'p-' + b,
              source_node: a, target_node: b, jobs_failed: 0, job_ids: ['x', 'y'],
              rtt_avg_ms: { median: v, min: v * 0.9, max: v * 1.2, samples: 3, wide: false } });
          }
          const times = [];
          for (let i = 0; i < 5; i++) {
            const t0 = performance.now();
            const el = hm.heatmap({ pairs }, rep.METRICS[0], 'node');
            document.getElementById('main').replaceChildren(el);
            el.getBoundingClientRect();
            await new Promise((r) => requestAnimationFrame(() => r()));
            times.push(performance.now() - t0);
          }
          done({ times, cells: document.querySelectorAll('#heatmap rect.cell').length });
        });
    "#;
    let got = b.client.execute_async(script, vec![]).await.unwrap();
    assert_eq!(got["cells"], 9900, "{got}");
    b.screenshot("bench-heatmap-100").await;
    println!(
        "heatmap at 100 nodes (9,900 cells): build + layout + first frame, ms: {}",
        got["times"]
    );
    b.close().await;
}

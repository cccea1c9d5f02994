//! A real Prometheus (Debian's `prometheus`, started here on a free port in a temp dir)
//! scrapes the podperf-web binary's `/metrics` every second; after a sweep round on loopback
//! workers, a PromQL query over its HTTP API returns the RTT of a measured pair.

mod metrics_common;

use std::process::Command;
use std::time::Duration;

use metrics_common::{sweep_round, MetricsWeb};
use podperf_testkit::{eventually, free_port, ChildGuard, Cluster, ClusterOpts, WorkerSpec};
use serde_json::Value;

/// Prometheus scraping `target` every second, its data in `dir`.
fn prometheus(dir: &std::path::Path, target: &str) -> (ChildGuard, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: podperf-web\n    static_configs:\n      \
             - targets: [\"{target}\"]\n"
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"));
    (ChildGuard::spawn_in(cmd, "prometheus", dir), addr)
}

/// The result vector of an instant query (empty while nothing matches).
async fn query(http: &reqwest::Client, addr: &str, promql: &str) -> Option<Vec<Value>> {
    let res = http
        .get(format!("http://{addr}/api/v1/query"))
        .query(&[("query", promql)])
        .send()
        .await
        .ok()?;
    let body: Value = res.json().await.ok()?;
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"].as_array().cloned()
}

#[tokio::test]
async fn prometheus_scrapes_the_rtt_of_a_measured_pair() {
    let mut c = Cluster::start(ClusterOpts::default()).await;
    c.add_worker(WorkerSpec::new("pod-a", "node-1", "127.0.0.181"));
    c.add_worker(WorkerSpec::new("pod-b", "node-2", "127.0.0.182"));
    c.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(20))
        .await;
    let web = MetricsWeb::start(&c, 10_000).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut prom, addr) = prometheus(dir.path(), &web.addr);
    let http = reqwest::Client::new();
    eventually(
        Duration::from_secs(30),
        "Prometheus scrapes podperf-web",
        || async {
            let up = query(&http, &addr, "up{job=\"podperf-web\"} == 1").await?;
            (!up.is_empty()).then_some(())
        },
    )
    .await;

    sweep_round(&c, 3).await;
    let pair = r#"{src_node="node-1",dst_node="node-2",path="pod_cross_node"}"#;
    let promql = format!("podperf_rtt_seconds_sum{pair} / podperf_rtt_seconds_count{pair}");
    let result = eventually(
        Duration::from_secs(30),
        "the RTT of node-1 → node-2",
        || async {
            let r = query(&http, &addr, &promql).await?;
            (!r.is_empty()).then_some(r)
        },
    )
    .await;
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0]["metric"]["src_node"], "node-1");
    let rtt: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
    // Loopback: well under a millisecond, but a real measurement.
    assert!(rtt > 0.0 && rtt < 0.01, "{rtt}");
    let sent = query(
        &http,
        &addr,
        &format!("podperf_probe_packets_sent_total{pair}"),
    )
    .await
    .unwrap();
    assert_eq!(sent[0]["value"][1], "3", "{sent:?}");
    prom.sigterm();
    assert!(
        prom.wait_timeout(Duration::from_secs(10)).is_some(),
        "{}",
        prom.log()
    );
}

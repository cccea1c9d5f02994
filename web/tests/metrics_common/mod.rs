//! The `podperf-web` binary with a metrics listener in front of a testkit [`Cluster`], scraped
//! over HTTP; shared by `metrics.rs` and `prometheus.rs`.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use podperf_protocol::job::{JobParams, JobSpec};
use podperf_protocol::sweep::SweepParams;
use podperf_testkit::{eventually, free_port, ChildGuard, Cluster};

/// A running `podperf-web` with `--metrics-listen`.
pub struct MetricsWeb {
    pub proc: ChildGuard,
    /// `127.0.0.1:PORT` of the metrics listener.
    pub addr: String,
    http: reqwest::Client,
}

impl MetricsWeb {
    /// Starts the binary against `cluster`'s NATS, with `PODPERF_METRICS_MAX_PAIRS=max_pairs`,
    /// and waits until `/metrics` answers 200 (it follows the stream and the bucket).
    pub async fn start(cluster: &Cluster, max_pairs: u64) -> MetricsWeb {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podperf-web"));
        cmd.env("PODPERF_NATS_URL", cluster.nats_url())
            .env("PODPERF_WEB_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("PODPERF_METRICS_LISTEN", &addr)
            .env("PODPERF_METRICS_MAX_PAIRS", max_pairs.to_string())
            .env("RUST_LOG", "info,async_nats=warn");
        let web = MetricsWeb {
            proc: ChildGuard::spawn(cmd, "podperf-web"),
            addr,
            http: reqwest::Client::new(),
        };
        eventually(Duration::from_secs(20), "/metrics answers 200", || {
            web.scrape()
        })
        .await;
        web
    }

    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// The text of one scrape in OpenMetrics (as Prometheus asks), if it answered 200.
    pub async fn scrape(&self) -> Option<String> {
        self.scrape_as(
            Some("application/openmetrics-text;version=1.0.0"),
            "application/openmetrics-text",
        )
        .await
    }

    /// The text of one scrape without an `Accept` header: Prometheus' text format.
    pub async fn scrape_text(&self) -> Option<String> {
        self.scrape_as(None, "text/plain; version=0.0.4").await
    }

    async fn scrape_as(&self, accept: Option<&str>, expect: &str) -> Option<String> {
        let mut req = self.http.get(self.url());
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let res = req.send().await.ok()?;
        if !res.status().is_success() {
            return None;
        }
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(expect), "{ct}");
        res.text().await.ok()
    }

    /// Scrapes until `f` finds what it waits for in the text.
    pub async fn wait_for<T>(&self, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        eventually(Duration::from_secs(20), what, || async {
            let text = self.scrape().await?;
            f(&text)
        })
        .await
    }
}

/// The value of the sample `series` (name and labels exactly as encoded) in a scrape.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .map(|(_, v)| v.parse().expect("a number"))
}

/// `name{src_node="…",dst_node="…",path="…"}`.
pub fn pair(name: &str, src: &str, dst: &str, path: &str) -> String {
    format!("{name}{{src_node=\"{src}\",dst_node=\"{dst}\",path=\"{path}\"}}")
}

/// One sweep round now: a sweep of every other worker from each worker of `cluster`, `count`
/// requests each; waits for all of them.
pub async fn sweep_round(cluster: &Cluster, count: u32) {
    let specs = cluster
        .workers
        .iter()
        .map(|w| JobSpec {
            family: None,
            source: w.id.clone(),
            target: None,
            params: JobParams::Sweep(SweepParams {
                count,
                interval_ms: 20,
                ..SweepParams::default()
            }),
            timeout_s: None,
        })
        .collect();
    let client = cluster.client();
    let ids = client.submit(specs).await.expect("sweeps accepted");
    for id in ids {
        let rec = client
            .wait_past_deadline(id, Duration::from_secs(10))
            .await
            .expect("the sweep ends");
        assert_eq!(
            rec.state.as_str(),
            "succeeded",
            "{rec:?}\n{}",
            cluster.logs()
        );
    }
}

//! podperf-web over a real listener in front of a real system (testkit's [`Cluster`]: nats-server,
//! redis-server, the dispatcher and worker binaries), called with a real HTTP client.

#![allow(dead_code)]

pub mod sse;

use std::time::Duration;

use podperf_testkit::{Cluster, ClusterOpts, WorkerSpec};
use podperf_web::WebConfig;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The token the tests' servers are given (unless a test says otherwise).
pub const TOKEN: &str = "test-token-1";

pub struct Web {
    pub cluster: Cluster,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub http: reqwest::Client,
    /// The token sent with each request (`None`: none sent).
    pub token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    pub served: Option<JoinHandle<std::io::Result<()>>>,
}

impl Web {
    /// A system with workers `pod-a` (node-1, `ip_a`) and `pod-b` (node-2, `ip_b`), listed, and
    /// podperf-web in front of it with [`TOKEN`].
    pub async fn two_workers(ip_a: &str, ip_b: &str) -> Web {
        let mut c = Cluster::start(ClusterOpts::default()).await;
        c.add_worker(WorkerSpec::new("pod-a", "node-1", ip_a));
        c.add_worker(WorkerSpec::new("pod-b", "node-2", ip_b));
        c.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(20))
            .await;
        Web::serve(c, config()).await
    }

    /// podperf-web in front of `cluster`, listening on 127.0.0.1:0.
    pub async fn serve(cluster: Cluster, config: WebConfig) -> Web {
        let nats = async_nats::ConnectOptions::new()
            .custom_inbox_prefix(podperf_protocol::names::WEB_INBOX_PREFIX)
            .connect(cluster.nats_url())
            .await
            .expect("connect to NATS");
        let client = podperf_client::Client::new(nats, Duration::from_secs(5));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let token = config.tokens.first().cloned();
        let served = tokio::spawn(podperf_web::run(listener, client, config, async {
            let _ = stopped.await;
        }));
        let web = Web {
            cluster,
            base,
            http: reqwest::Client::new(),
            token,
            stop: Some(stop),
            served: Some(served),
        };
        web.wait_ready().await;
        web
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        podperf_testkit::eventually(Duration::from_secs(20), "podperf-web is ready", || async {
            let res = self.http.get(self.url("/readyz")).send().await.ok()?;
            (res.status() == StatusCode::OK).then_some(())
        })
        .await;
    }

    /// Starts the graceful shutdown.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the token (if any).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends `req`; the status and the body as JSON (panics, showing it, if it is not JSON).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = req.send().await.expect("the request is answered");
        let status = res.status();
        let text = res.text().await.expect("a body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {text}"));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// POSTs `body` as it is.
    pub async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        self.send(self.request(Method::POST, path).body(body)).await
    }

    /// The id of the worker whose pod is `pod`.
    pub fn worker_id(&self, pod: &str) -> String {
        self.cluster.worker(pod).id.clone()
    }
}

/// The tests' configuration: [`TOKEN`], a fast poll for joins and leaves.
pub fn config() -> WebConfig {
    WebConfig {
        tokens: vec![TOKEN.into(), "test-token-2".into()],
        poll_interval: Duration::from_millis(200),
        ..WebConfig::default()
    }
}

/// A ping from `pod-a` to `pod-b`.
pub fn ping(count: u32) -> Value {
    serde_json::json!({
        "source": "pod-a",
        "target": {"worker": "pod-b"},
        "params": {"kind": "ping", "count": count}
    })
}

/// A noop on `pod-a` sleeping `ms`.
pub fn noop(ms: u32) -> Value {
    serde_json::json!({"source": "pod-a", "params": {"kind": "noop", "sleep_ms": ms}})
}

/// Asserts an error answer: its status and `error.code`; returns `error`.
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) -> Value {
    let (st, body) = got;
    assert_eq!(st.as_u16(), status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

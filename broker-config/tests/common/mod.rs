//! A nats-server running `auth.conf`, and clients that record the server's errors.

#![allow(dead_code)]

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::{Client, ConnectOptions};
use podperf_broker_tests::{auth_server_config, password};
use podperf_testkit::NatsServer;
use tokio::sync::mpsc;

pub const BUCKET: &str = "podperf-workers";
pub const STREAM: &str = "PODPERF_RESULTS";

/// How long a message that should not arrive is waited for.
pub const SILENCE: Duration = Duration::from_millis(300);

pub fn server() -> NatsServer {
    NatsServer::start_with_config(&auth_server_config())
}

/// A client logged in as `user`, and the server errors it receives (e.g. permission violations).
pub struct Conn {
    pub client: Client,
    pub errors: mpsc::UnboundedReceiver<String>,
}

/// The inbox prefix the binary of `user`'s role connects with (admin: the default `_INBOX`).
pub fn inbox_prefix(user: &str) -> &'static str {
    use podperf_protocol::names::*;
    match user {
        "worker" => WORKER_INBOX_PREFIX,
        "dispatcher" => DISPATCHER_INBOX_PREFIX,
        "cli" => CLI_INBOX_PREFIX,
        "web" => WEB_INBOX_PREFIX,
        _ => "_INBOX",
    }
}

pub async fn connect(nats: &NatsServer, user: &str) -> Conn {
    let (tx, errors) = mpsc::unbounded_channel();
    let client = ConnectOptions::with_user_and_password(user.into(), password(user).into())
        .custom_inbox_prefix(inbox_prefix(user))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(err) = event {
                    let _ = tx.send(err.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"));
    Conn { client, errors }
}

impl Conn {
    /// Waits for the server to report a permission violation mentioning `subject`.
    pub async fn expect_violation(&mut self, subject: &str) {
        let wait = async {
            while let Some(err) = self.errors.recv().await {
                if err.contains("Permissions Violation") && err.contains(subject) {
                    return err;
                }
            }
            panic!("error channel closed");
        };
        tokio::time::timeout(Duration::from_secs(3), wait)
            .await
            .unwrap_or_else(|_| panic!("no permissions violation reported for {subject}"));
    }
}

/// What the dispatcher creates (dispatcher/src/setup.rs), made here with the admin credential.
pub async fn create_bucket_and_stream(admin: &Client) -> kv::Store {
    let js = jetstream::new(admin.clone());
    js.create_or_update_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["podperf.results.>".into(), "podperf.events.>".into()],
        ..Default::default()
    })
    .await
    .expect("create the results stream");
    js.create_key_value(kv::Config {
        bucket: BUCKET.into(),
        history: 1,
        max_age: Duration::from_secs(3),
        storage: stream::StorageType::Memory,
        limit_markers: Some(Duration::from_secs(1)),
        ..Default::default()
    })
    .await
    .expect("create the liveness bucket")
}

/// Asserts that `sub` receives nothing for a moment.
pub async fn assert_silent(sub: &mut async_nats::Subscriber, why: &str) {
    use futures::StreamExt;
    if let Ok(Some(msg)) = tokio::time::timeout(SILENCE, sub.next()).await {
        panic!(
            "{why}: {} arrived on {}",
            String::from_utf8_lossy(&msg.payload),
            msg.subject
        );
    }
}

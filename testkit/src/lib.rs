//! Dev-only helpers that let integration tests run against **real** servers, the way nats.rs's
//! own tests do: every test starts its own `nats-server` / `redis-server` on a dynamic port in a
//! unique temp dir, and everything is killed, reaped and deleted on `Drop`.
//!
//! The servers are started synchronously, so they work from both `#[test]` and `#[tokio::test]`
//! functions; [`Cluster`] (a whole system as processes, with an API client) and [`eventually`]
//! are async. Start-up failures panic with the server's log tail; a missing binary panics with an
//! install hint.
//!
//! ```no_run
//! use podperf_testkit::{NatsServer, RedisServer};
//!
//! let mut nats = NatsServer::start(); // JetStream on, store in a temp dir
//! let redis = RedisServer::start();
//! println!("{} {}", nats.url(), redis.url());
//! nats.restart(); // same port, same JetStream store
//! ```
//!
//! # Layout
//! - [`NatsServer`] (`nats.rs`): `nats-server -js` on a [`free_port`], URL read back from its
//!   ports file.
//! - [`RedisServer`] (`redis.rs`): `redis-server` on a [`free_port`], persistence off.
//! - [`ChildGuard`] (`process.rs`): any child process (our own binaries) with its output in a
//!   log file, SIGKILLed on drop; also the signal/wait plumbing the servers share.
//! - [`Cluster`] (`cluster.rs`): nats-server + redis-server + the `podperf-dispatcher` and
//!   `podperf-worker` binaries, and a `podperf_client::Client`.
//! - [`wait_until`], [`eventually`], [`free_port`] (here): polling and port helpers;
//!   [`call_raw_reply`]: a deliberately malformed API request, its answer typed.
//! - [`descendants`], [`process_running`] (`procs.rs`): what is running, read from `/proc`.
//!
//! Processes are not put in their own process group, so Ctrl-C on `cargo test` reaches them
//! too. A test binary killed with SIGKILL cannot run `Drop`, and may leave servers behind.

mod cluster;
mod nats;
mod process;
mod procs;
mod redis;

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

pub use cluster::{Cluster, ClusterOpts, Worker, WorkerSpec};
pub use nats::{NatsServer, NATS_SERVER_ENV, STORE_DIR_PLACEHOLDER};
pub use process::ChildGuard;
pub use procs::{descendants, is_alive, process_running, processes, Proc};
pub use redis::{RedisServer, REDIS_SERVER_ENV};

/// How long a server may take to accept connections before start-up is declared failed.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often [`wait_until`] re-evaluates its condition.
const WAIT_UNTIL_POLL: Duration = Duration::from_millis(50);

/// Polls `f` every 50 ms until it returns `true`; panics mentioning `what` after `timeout`.
///
/// `f` is always evaluated at least once, and once more at the deadline, so a condition that
/// turns true just in time still passes.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// podperf_testkit::wait_until(Duration::from_secs(1), "n reaches 3", || {
///     n += 1;
///     n >= 3
/// });
/// ```
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        thread::sleep(WAIT_UNTIL_POLL.min(deadline - now));
    }
}

/// Polls `f` every 50 ms until it yields `Some`, and returns that; panics naming `what` after
/// `within`. `f` runs at least once, and once more at the deadline. The async [`wait_until`].
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// let mut n = 0;
/// let v = podperf_testkit::eventually(Duration::from_secs(1), "n reaches 3", || {
///     n += 1;
///     let now = n;
///     async move { (now >= 3).then_some(now) }
/// })
/// .await;
/// assert_eq!(v, 3);
/// # });
/// ```
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            panic!("timed out after {within:?} waiting until {what}");
        }
        tokio::time::sleep(WAIT_UNTIL_POLL.min(deadline - now)).await;
    }
}

/// Sends `body` as it is (e.g. deliberately malformed JSON) to `podperf.api.<endpoint>` with
/// [`podperf_client::Client::call_raw`] and unwraps the reply's envelope the way
/// [`podperf_client::Client::call`] does: `Ok(the "ok" value)`, or the dispatcher's refusal as a
/// typed [`podperf_client::Error`] (`kind()` = `Refused`, `code()`, `api_error()`).
pub async fn call_raw_reply(
    client: &podperf_client::Client,
    endpoint: &str,
    body: impl Into<bytes::Bytes>,
) -> podperf_client::Result<serde_json::Value> {
    let payload = client.call_raw(endpoint, body.into()).await?;
    let reply: podperf_protocol::api::ApiReply<serde_json::Value> =
        serde_json::from_slice(&payload).unwrap_or_else(|e| {
            panic!(
                "{endpoint} answered with something that is not an API reply ({e}): {}",
                String::from_utf8_lossy(&payload)
            )
        });
    Ok(reply.into_result()?)
}

/// A TCP port on 127.0.0.1 that was free a moment ago, picked at random *below* the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`).
///
/// Below, because servers are restarted on the same port (NATS, iperf3 -s): a port from the
/// ephemeral range can meanwhile become the local end of some other test's outgoing connection,
/// and the restart then fails with "address already in use" for as long as that connection
/// lives. Another process may still take the port before the caller binds it; callers that start
/// servers retry on "address already in use", as [`RedisServer::start`] does.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    const LOWEST: u16 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > LOWEST + 1_000 {
        let span = u64::from(ephemeral_low - LOWEST);
        for _ in 0..1_000 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            let port = LOWEST + (h.finish() % span) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("binding 127.0.0.1:0 to find a free port: {e}"))
}

/// Path of one of the workspace's binaries (`podperf`, `podperf-worker`, `podperf-dispatcher`),
/// next to the running test executable (`target/<profile>/deps/..`). Panics with a build hint
/// when it has not been built (`cargo build --bins`).
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

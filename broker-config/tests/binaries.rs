//! The real podperf-dispatcher, two podperf-workers, the podperf CLI and podperf-web, each logged in with its
//! own credential against `auth.conf`: the permission sets are sufficient, not just restrictive.
//! Needs `cargo build --workspace --bins` first.

use std::process::{Command, Output};
use std::time::Duration;

use podperf_broker_tests::password;
use podperf_testkit::{free_port, wait_until, workspace_bin, ChildGuard, NatsServer, RedisServer};

fn as_user(cmd: &mut Command, nats: &NatsServer, user: &str) {
    cmd.env("PODPERF_NATS_URL", nats.url())
        .env("PODPERF_NATS_USER", user)
        .env("PODPERF_NATS_PASSWORD", password(user))
        .env("RUST_LOG", "info,async_nats=warn");
}

fn podperf(nats: &NatsServer, user: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(workspace_bin("podperf"));
    cmd.args(args);
    as_user(&mut cmd, nats, user);
    cmd.output().expect("run podperf")
}

fn worker(nats: &NatsServer, pod: &str, node: &str, ip: &str) -> ChildGuard {
    let mut cmd = Command::new(workspace_bin("podperf-worker"));
    as_user(&mut cmd, nats, "worker");
    cmd.env("POD_UID", format!("uid-{pod}-{}", free_port()))
        .env("POD_NAME", pod)
        .env("POD_NAMESPACE", "podperf")
        .env("POD_IP", ip)
        .env("NODE_NAME", node)
        .env("NODE_IP", ip)
        .env("PODPERF_IPERF3_PORT", free_port().to_string())
        .env("PODPERF_SHUTDOWN_GRACE_S", "2");
    ChildGuard::spawn(cmd, pod)
}

#[test]
fn real_binaries_work_with_their_own_credentials() {
    let nats = NatsServer::start_with_config(&podperf_broker_tests::auth_server_config());
    let redis = RedisServer::start();
    let mut cmd = Command::new(workspace_bin("podperf-dispatcher"));
    as_user(&mut cmd, &nats, "dispatcher");
    cmd.env("PODPERF_REDIS_URL", redis.url())
        .env("PODPERF_WORKER_TTL_S", "2");
    let dispatcher = ChildGuard::spawn(cmd, "dispatcher");
    let workers = [
        worker(&nats, "pod-a", "node-a", "127.0.0.2"),
        worker(&nats, "pod-b", "node-b", "127.0.0.3"),
    ];
    let logs = || {
        let mut s = format!("--- dispatcher ---\n{}\n", dispatcher.log());
        for w in &workers {
            s += &format!("--- {} ---\n{}\n", w.name(), w.log());
        }
        s + &format!("--- nats-server ---\n{}", nats.log())
    };

    let mut listed = String::new();
    wait_until(
        Duration::from_secs(20),
        "podperf workers lists both workers",
        || {
            let out = podperf(&nats, "cli", &["workers"]);
            listed = String::from_utf8_lossy(&out.stdout).into_owned();
            out.status.success() && listed.contains("pod-a") && listed.contains("pod-b")
        },
    );
    println!("$ podperf workers\n{listed}");

    let out = podperf(
        &nats,
        "cli",
        &[
            "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "2",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("succeeded"),
        "ping failed: {stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    println!("$ podperf run ping --from pod-a --to pod-b --count 2\n{stdout}");

    // podperf-web with its credential: ready (the job feed followed, the API answers), and a job
    // submitted and waited for over HTTP; its /metrics follows the results stream (an ordered
    // consumer) and the workers bucket (a watch) and counts that job.
    let port = free_port();
    let metrics_port = free_port();
    let mut cmd = Command::new(workspace_bin("podperf-web"));
    as_user(&mut cmd, &nats, "web");
    cmd.env("PODPERF_WEB_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "PODPERF_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env_remove("PODPERF_WEB_TOKEN");
    let web = ChildGuard::spawn(cmd, "podperf-web");
    wait_until(Duration::from_secs(20), "podperf-web is ready", || {
        http(port, "GET /readyz", "").starts_with("HTTP/1.1 200")
    });
    wait_until(
        Duration::from_secs(20),
        "podperf-web's /metrics follows",
        || {
            let scrape = http(metrics_port, "GET /metrics", "");
            scrape.starts_with("HTTP/1.1 200") && scrape.contains("podperf_workers{node=\"node-b\"")
        },
    );
    let spec =
        r#"{"source":"pod-a","target":{"worker":"pod-b"},"params":{"kind":"ping","count":1}}"#;
    let answer = http(port, "POST /api/v2/jobs?wait=20s", spec);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains(r#""state":"succeeded""#),
        "{answer}\n--- podperf-web ---\n{}\n{}",
        web.log(),
        logs()
    );
    let sent = r#"podperf_probe_packets_sent_total{src_node="node-a",dst_node="node-b",path="pod_cross_node"} 1"#;
    wait_until(Duration::from_secs(20), "/metrics counts the ping", || {
        let scrape = http(metrics_port, "GET /metrics", "");
        scrape.contains(sent)
            && scrape.contains(r#"podperf_jobs_total{kind="ping",state="succeeded"} 1"#)
    });
    // `podperf status` reads the dispatchers bucket and the stream through the dispatcher.
    let out = podperf(&nats, "cli", &["-o", "json", "status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"role\": \"leader\"") && stdout.contains("\"queue_depth\""),
        "status failed: {stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    println!("$ podperf -o json status\n{stdout}");

    // Schedules: the cli user adds one through the API; the dispatcher stores it in its bucket
    // and starts its first run at once (a compare-and-set on the key).
    let add = [
        "schedule", "add", "perm", "--every", "1h", "sweep", "--count", "1",
    ];
    let out = podperf(&nats, "cli", &add);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    wait_until(
        Duration::from_secs(20),
        "the schedule's first run started",
        || {
            let out = podperf(&nats, "cli", &["-o", "json", "schedule", "list"]);
            String::from_utf8_lossy(&out.stdout).contains("\"last_run\"")
        },
    );
    // The web user reads and removes it over HTTP.
    let listed = http(port, "GET /api/v2/schedules", "");
    assert!(
        listed.starts_with("HTTP/1.1 200") && listed.contains(r#""name":"perm""#),
        "{listed}"
    );
    let removed = http(port, "DELETE /api/v2/schedules/perm", "");
    assert!(removed.starts_with("HTTP/1.1 200"), "{removed}");

    // Nothing anyone did was refused (a silently refused ack or flow-control reply shows here).
    let log = nats.log();
    assert!(
        !log.contains("Violation"),
        "permission violations:\n{}",
        logs()
    );

    // The worker's credential cannot drive the API.
    let out = podperf(&nats, "worker", &["--api-timeout-s", "2", "workers"]);
    assert!(
        !out.status.success(),
        "the worker credential listed workers"
    );
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (`request` = `METHOD /path`), the whole answer as text
/// ("" when the connection fails).
fn http(port: u16, request: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let req = format!(
        "{request} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut answer = String::new();
    if conn.write_all(req.as_bytes()).is_ok() {
        let _ = conn.read_to_string(&mut answer);
    }
    answer
}

//! Integration tests: the helpers start real servers, talk to them over raw TCP, and leave no
//! process behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use podperf_testkit::{free_port, wait_until, ChildGuard, NatsServer, RedisServer};

/// Whether a PID still has a `/proc` entry (zombies do, so this also checks reaping).
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A minimal NATS protocol client over a raw socket, enough to drive the JetStream API.
struct RawNats {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawNats {
    /// Connects and returns the client plus the server's `INFO {...}` line.
    fn connect(url: &str) -> (Self, String) {
        let stream = TcpStream::connect(url.trim_start_matches("nats://")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut client = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let info = client.line().expect("no INFO from nats-server");
        client.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\n".as_bytes());
        (client, info)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line),
            _ => None,
        }
    }

    /// Publishes `payload` to `subject` and returns the first reply, `None` on timeout.
    fn request(&mut self, subject: &str, payload: &str) -> Option<String> {
        let msg = format!(
            "SUB _INBOX.raw 1\r\nPUB {subject} _INBOX.raw {}\r\n{payload}\r\n",
            payload.len()
        );
        self.send(msg.as_bytes());
        loop {
            let line = self.line()?;
            if line.starts_with("PING") {
                self.send(b"PONG\r\n");
            } else if line.starts_with("MSG ") {
                let len: usize = line.split_whitespace().last()?.parse().ok()?;
                let mut body = vec![0; len + 2];
                self.reader.read_exact(&mut body).ok()?;
                body.truncate(len);
                return String::from_utf8(body).ok();
            } else if line.starts_with("-ERR") {
                panic!("nats-server error: {line}");
            }
        }
    }
}

#[test]
fn nats_sends_info_banner() {
    let nats = NatsServer::start();
    assert!(
        nats.url().starts_with("nats://127.0.0.1:"),
        "{}",
        nats.url()
    );
    assert!(nats.url().ends_with(&format!(":{}", nats.port())));
    let (_client, info) = RawNats::connect(&nats.url());
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains("\"jetstream\":true"), "{info}");
}

#[test]
fn nats_restart_keeps_port_and_jetstream_store() {
    let mut nats = NatsServer::start();
    let (port, old_pid) = (nats.port(), nats.pid());
    let (mut client, _) = RawNats::connect(&nats.url());
    let created = client
        .request(
            "$JS.API.STREAM.CREATE.TESTKIT",
            r#"{"name":"TESTKIT","subjects":["testkit.>"],"storage":"file"}"#,
        )
        .expect("no reply to STREAM.CREATE");
    assert!(created.contains("\"config\""), "{created}");
    let ack = client
        .request("testkit.one", "hello")
        .expect("no publish ack");
    assert!(ack.contains("\"seq\":1"), "{ack}");
    drop(client);
    assert!(nats.store_dir().exists());

    nats.restart();
    assert_eq!(nats.port(), port);
    assert_ne!(nats.pid(), old_pid);
    assert!(!alive(old_pid), "old nats-server {old_pid} still alive");

    let mut info = String::new();
    wait_until(Duration::from_secs(10), "the stream is back", || {
        let (mut client, _) = RawNats::connect(&nats.url());
        info = client
            .request("$JS.API.STREAM.INFO.TESTKIT", "")
            .unwrap_or_default();
        info.contains("\"messages\":1")
    });
}

#[test]
fn nats_kill_then_restart() {
    let mut nats = NatsServer::start();
    let pid = nats.pid();
    assert!(nats.kill().is_some());
    assert!(!alive(pid));
    assert!(!nats.is_running());
    assert!(TcpStream::connect(("127.0.0.1", nats.port())).is_err());
    nats.restart();
    assert!(nats.is_running());
    let (_client, info) = RawNats::connect(&nats.url());
    assert!(info.starts_with("INFO {"), "{info}");
}

#[test]
fn nats_stop_removes_process() {
    let mut nats = NatsServer::start();
    let pid = nats.pid();
    assert!(alive(pid));
    let status = nats.stop().expect("was running");
    assert!(
        !alive(pid),
        "nats-server {pid} still alive after stop; {status}"
    );
    assert!(nats.stop().is_none());
}

#[test]
fn nats_with_config() {
    let nats = NatsServer::start_with_config(
        "server_name: testkit_cfg\njetstream { store_dir: \"{store_dir}\" }\n",
    );
    let conf = std::fs::read_to_string(nats.dir().join("nats.conf")).unwrap();
    assert!(
        conf.contains(&*nats.store_dir().to_string_lossy()),
        "{conf}"
    );
    let (_client, info) = RawNats::connect(&nats.url());
    assert!(info.contains("\"server_name\":\"testkit_cfg\""), "{info}");
}

#[test]
#[should_panic(expected = "nats-server")]
fn nats_bad_config_panics_with_log() {
    let _nats = NatsServer::start_with_config("this is { not valid");
}

#[test]
fn drop_cleans_up_nats_and_its_dir() {
    let nats = NatsServer::start();
    let (pid, dir) = (nats.pid(), nats.dir().to_owned());
    drop(nats);
    assert!(!alive(pid));
    assert!(!dir.exists());
}

/// Sends `PING` over a raw socket and returns the reply line.
fn redis_ping(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(b"PING\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn redis_ping_pong() {
    let redis = RedisServer::start();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert_eq!(redis_ping(redis.port()), "+PONG\r\n");
}

#[test]
fn redis_restart_keeps_port() {
    let mut redis = RedisServer::start();
    let (port, old_pid) = (redis.port(), redis.pid());
    redis.restart();
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), old_pid);
    assert!(!alive(old_pid));
    assert_eq!(redis_ping(port), "+PONG\r\n");
    redis.kill();
    redis.restart();
    assert_eq!(redis_ping(port), "+PONG\r\n");
}

#[test]
fn redis_stop_removes_process() {
    let mut redis = RedisServer::start();
    let pid = redis.pid();
    assert!(alive(pid));
    assert!(redis.stop().is_some());
    assert!(!alive(pid), "redis-server {pid} still alive after stop");
    assert!(TcpStream::connect(("127.0.0.1", redis.port())).is_err());
}

#[test]
fn drop_cleans_up_redis_and_its_dir() {
    let redis = RedisServer::start();
    let (pid, dir) = (redis.pid(), redis.dir().to_owned());
    drop(redis);
    assert!(!alive(pid));
    assert!(!dir.exists());
}

#[test]
fn parallel_servers_get_distinct_ports() {
    let (n1, n2) = std::thread::scope(|s| {
        let a = s.spawn(NatsServer::start);
        let b = s.spawn(NatsServer::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (r1, r2) = std::thread::scope(|s| {
        let a = s.spawn(RedisServer::start);
        let b = s.spawn(RedisServer::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(n1.port(), n2.port());
    assert_ne!(n1.store_dir(), n2.store_dir());
    assert_ne!(r1.port(), r2.port());
    assert_eq!(redis_ping(r1.port()), "+PONG\r\n");
    assert_eq!(redis_ping(r2.port()), "+PONG\r\n");
}

#[test]
fn child_guard_kills_on_drop() {
    let mut cmd = Command::new("sleep");
    cmd.arg("600");
    let guard = ChildGuard::spawn(cmd, "sleeper");
    let pid = guard.pid();
    assert!(alive(pid));
    drop(guard);
    assert!(!alive(pid), "sleep {pid} survived ChildGuard drop");
}

#[test]
fn child_guard_captures_output_and_signals() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo to-stdout; echo to-stderr >&2; exec sleep 600"]);
    let mut guard = ChildGuard::spawn(cmd, "talker");
    wait_until(Duration::from_secs(5), "both lines are logged", || {
        let log = guard.log();
        log.contains("to-stdout") && log.contains("to-stderr")
    });
    assert!(guard.log_path().ends_with("talker.log"));
    assert!(guard.is_running());
    assert!(guard.wait_timeout(Duration::from_millis(50)).is_none());
    guard.sigterm();
    let status = guard
        .wait_timeout(Duration::from_secs(5))
        .expect("sleep ignored SIGTERM");
    assert!(!status.success());
    assert!(!guard.is_running());
    // Signalling a reaped child is a no-op, not a kill of whoever reuses the PID.
    guard.sigkill();
}

#[test]
fn child_guard_in_callers_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo done"]);
    let mut guard = ChildGuard::spawn_in(cmd, "oneshot", dir.path());
    let status = guard.wait_timeout(Duration::from_secs(5)).expect("exited");
    assert!(status.success());
    assert_eq!(guard.log(), "done\n");
    drop(guard);
    assert!(dir.path().join("oneshot.log").exists());
}

#[test]
#[should_panic(expected = "waiting until the impossible happens")]
fn wait_until_panics_with_what() {
    wait_until(Duration::from_millis(120), "the impossible happens", || {
        false
    });
}

#[test]
fn free_port_is_bindable() {
    let port = free_port();
    assert_ne!(port, 0);
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

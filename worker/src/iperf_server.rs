//! Supervises the worker's `iperf3 -s`, bound to its pod IP and port; restarts it if it dies.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::runner::tool_command;

/// Lines of the server's stderr kept to explain why it exited.
const STDERR_TAIL: usize = 5;

/// Runs `iperf3 -s -B ip -p port` until `shutdown`, restarting it (with back-off) when it exits.
pub async fn supervise(ip: IpAddr, port: u16, shutdown: CancellationToken) {
    let args = vec![
        "-s".to_string(),
        "-B".into(),
        ip.to_string(),
        "-p".into(),
        port.to_string(),
    ];
    let mut backoff = Duration::from_millis(200);
    loop {
        let spawned = tool_command("iperf3", &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(err) => {
                tracing::error!(%err, "cannot start iperf3 server; iperf3 jobs toward this worker fail");
                return;
            }
        };
        tracing::info!(%ip, port, pid = child.id(), "iperf3 server started");
        // iperf3 writes a line per stray connection (port scans, TCP probes): the pipe is read
        // all the time, or it would fill up and freeze the server.
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let drain = tokio::spawn(keep_tail(child.stderr.take(), tail.clone()));
        let started = tokio::time::Instant::now();
        tokio::select! {
            status = child.wait() => {
                let _ = drain.await;
                let stderr = Vec::from(tail.lock().unwrap().clone()).join(" | ");
                tracing::warn!(?status, %stderr, "iperf3 server exited; restarting");
            }
            _ = shutdown.cancelled() => {
                let _ = child.kill().await;
                return;
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
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

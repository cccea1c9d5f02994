//! Supervises the worker's `iperf3 -s`, bound to its pod IP and port; restarts it if it dies.

use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runner::tool_command;

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
        let started = tokio::time::Instant::now();
        tokio::select! {
            status = child.wait() => {
                let stderr = read_stderr(&mut child).await;
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

async fn read_stderr(child: &mut tokio::process::Child) -> String {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = err.read(&mut buf).await {
            text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
        }
    }
    text
}

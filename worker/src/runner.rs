//! Runs one external tool: argv only (never a shell), its own process group, a hard timeout,
//! cancellation, output capped. The whole group is killed on timeout, cancel or drop.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::probe::ToolOutput;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited,
    TimedOut,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub ended: Ended,
    pub output: ToolOutput,
    /// Whether stdout or stderr exceeded the cap and was cut.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("waiting for {program} failed: {source}")]
    Wait {
        program: String,
        source: std::io::Error,
    },
}

/// A command for a tool: no stdin, its own process group, killed with the worker.
pub fn tool_command(program: &str, args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    cmd
}

/// Asks the kernel to SIGKILL the tool when the worker dies, even by SIGKILL, so no ping or
/// iperf3 outlives its worker.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    let worker = nix::unistd::Pid::this();
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2) and
    // getppid(2), both async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)).map_err(std::io::Error::from)?;
            // The worker may have died between fork and prctl: then nobody would kill the tool.
            if nix::unistd::getppid() != worker {
                return Err(std::io::Error::other(
                    "the worker exited before the tool started",
                ));
            }
            Ok(())
        });
    }
}

/// Runs `program args…` until it exits, `timeout` passes or `cancel` fires; keeps at most `cap`
/// bytes of each output stream.
pub async fn run(
    program: &str,
    args: &[String],
    timeout: Duration,
    cap: usize,
    cancel: &CancellationToken,
) -> Result<Finished, RunError> {
    let mut child = tool_command(program, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.to_string(),
            source,
        })?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let stdout = tokio::spawn(read_capped(child.stdout.take(), cap));
    let stderr = tokio::spawn(read_capped(child.stderr.take(), cap));

    let (ended, status) = tokio::select! {
        status = child.wait() => (Ended::Exited, Some(status)),
        _ = tokio::time::sleep(timeout) => (Ended::TimedOut, None),
        _ = cancel.cancelled() => (Ended::Cancelled, None),
    };
    let status = match status {
        Some(s) => s,
        None => {
            if let Some(pgid) = pgid {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            child.wait().await
        }
    }
    .map_err(|source| RunError::Wait {
        program: program.to_string(),
        source,
    })?;
    // A grandchild could hold the pipes open after the tool exited: don't wait for it forever.
    let (out, out_cut) = collect(stdout).await;
    let (err, err_cut) = collect(stderr).await;
    Ok(Finished {
        ended,
        output: ToolOutput {
            exit_code: status.code(),
            stdout: out,
            stderr: err,
        },
        truncated: out_cut || err_cut,
    })
}

async fn collect(reader: tokio::task::JoinHandle<(String, bool)>) -> (String, bool) {
    match tokio::time::timeout(Duration::from_secs(1), reader).await {
        Ok(Ok(text)) => text,
        _ => (String::new(), false),
    }
}

/// Reads a stream to its end, keeping the first `cap` bytes.
async fn read_capped<R: AsyncRead + Unpin>(stream: Option<R>, cap: usize) -> (String, bool) {
    let Some(mut stream) = stream else {
        return (String::new(), false);
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                truncated |= n > room;
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let cancel = CancellationToken::new();
        let f = run(
            "sh",
            &args(&["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(5),
            1024,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(f.ended, Ended::Exited);
        assert_eq!(f.output.exit_code, Some(3));
        assert_eq!(f.output.stdout, "out\n");
        assert_eq!(f.output.stderr, "err\n");
        assert!(!f.truncated);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let cancel = CancellationToken::new();
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let f = run(
            "sh",
            &args(&["-c", &script]),
            Duration::from_millis(300),
            1024,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(f.ended, Ended::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was killed with its group (it may linger briefly as a zombie).
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .map(|s| !s.contains("State:\tZ"))
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let alive = alive();
        assert!(!alive, "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn cancel_stops_the_tool() {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c.cancel();
        });
        let f = run(
            "sleep",
            &args(&["30"]),
            Duration::from_secs(60),
            1024,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(f.ended, Ended::Cancelled);
        assert_eq!(f.output.exit_code, None);
    }

    #[tokio::test]
    async fn output_is_capped() {
        let cancel = CancellationToken::new();
        let f = run(
            "head",
            &args(&["-c", "100000", "/dev/zero"]),
            Duration::from_secs(5),
            1000,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(f.output.stdout.len(), 1000);
        assert!(f.truncated);
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let cancel = CancellationToken::new();
        let err = run(
            "podperf-no-such-tool",
            &[],
            Duration::from_secs(1),
            10,
            &cancel,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }), "{err}");
    }
}

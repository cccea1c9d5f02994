//! Process plumbing shared by the server wrappers, and [`ChildGuard`] for arbitrary programs.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// How often child-state polls look again; short so tests stay fast.
const POLL: Duration = Duration::from_millis(10);

/// How long [`terminate`] waits after SIGTERM before escalating to SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many lines of a log file panics quote, enough to see why a server died.
const LOG_TAIL_LINES: usize = 40;

/// Opens `path` in append mode so restarts keep the earlier runs' output.
fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Spawns `cmd` with stdout and stderr both appended to the log file at `log`.
pub(crate) fn spawn_logged(cmd: &mut Command, log: &Path) -> io::Result<Child> {
    let out = open_log(log)?;
    let err = out.try_clone()?;
    cmd.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
}

/// Sends `sig` to `child` unless it has already been reaped; `ESRCH` counts as success.
///
/// Checking `try_wait` first matters: once `std` has reaped the child its PID may be reused by
/// an unrelated process, while an un-reaped (possibly zombie) child still owns its PID.
fn send(child: &mut Child, sig: Signal) -> nix::Result<()> {
    if !matches!(child.try_wait(), Ok(None)) {
        return Ok(());
    }
    let raw = i32::try_from(child.id()).map_err(|_| Errno::EINVAL)?;
    match kill(Pid::from_raw(raw), sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Like [`send`], but panics on an unexpected failure (e.g. `EPERM`).
pub(crate) fn signal(child: &mut Child, sig: Signal) {
    if let Err(e) = send(child, sig) {
        panic!("kill({}, {sig}) failed: {e}", child.id());
    }
}

/// SIGKILL and reap without ever panicking: for `Drop`, which may run while a test unwinds.
pub(crate) fn kill_quietly(child: &mut Child) {
    let _ = send(child, Signal::SIGKILL);
    let _ = child.wait();
}

/// Waits up to `timeout` for `child` to exit; `None` if it is still running.
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for pid {} failed: {e}", child.id()),
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// SIGKILLs `child` (if still running) and reaps it, so no zombie is left behind.
pub(crate) fn kill_and_reap(child: &mut Child) -> ExitStatus {
    signal(child, Signal::SIGKILL);
    child
        .wait()
        .unwrap_or_else(|e| panic!("reaping pid {} failed: {e}", child.id()))
}

/// SIGTERMs `child`, waits up to `grace`, then SIGKILLs it; always reaps it.
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> ExitStatus {
    signal(child, Signal::SIGTERM);
    match wait_timeout(child, grace) {
        Some(status) => status,
        None => kill_and_reap(child),
    }
}

/// The whole log file, or a note saying why it could not be read.
pub(crate) fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<could not read log {}: {e}>", path.display()))
}

/// The last lines of the log file, for panic messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = read_log(path);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..].join("\n")
}

/// Whether a failed start looks like a lost race for the port (worth retrying).
pub(crate) fn is_addr_in_use(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}

/// Finds `name` as an executable: `$env_override` if set, else the first hit on `PATH`.
pub(crate) fn find_program(name: &str, env_override: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_override) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A child process (typically one of our own binaries) that is killed and reaped on drop.
///
/// stdout and stderr go to `<name>.log` in a directory the guard owns (or one the caller
/// passes in), so a failing test can print [`ChildGuard::log`] instead of losing the output.
///
/// ```no_run
/// use std::process::Command;
/// use std::time::Duration;
/// use podperf_testkit::ChildGuard;
///
/// let mut cmd = Command::new("sleep");
/// cmd.arg("30");
/// let mut worker = ChildGuard::spawn(cmd, "sleeper");
/// worker.sigterm();
/// let status = worker.wait_timeout(Duration::from_secs(5));
/// assert!(status.is_some(), "did not stop; log:\n{}", worker.log());
/// ```
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    name: String,
    log_path: PathBuf,
    /// Kept only so the directory lives as long as the guard; `None` when the caller owns it.
    _dir: Option<TempDir>,
}

impl ChildGuard {
    /// Spawns `cmd`, logging to a fresh temp dir owned by the guard.
    ///
    /// Panics if the temp dir cannot be created or the program cannot be spawned.
    pub fn spawn(cmd: Command, name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("podperf-child-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating temp dir for {name}: {e}"));
        let log_path = dir.path().join(format!("{name}.log"));
        Self::spawn_logging_to(cmd, name, log_path, Some(dir))
    }

    /// Spawns `cmd`, logging to `<dir>/<name>.log`; `dir` stays owned by the caller.
    ///
    /// Useful when the program also writes other files the test wants to inspect.
    pub fn spawn_in(cmd: Command, name: &str, dir: &Path) -> Self {
        Self::spawn_logging_to(cmd, name, dir.join(format!("{name}.log")), None)
    }

    fn spawn_logging_to(
        mut cmd: Command,
        name: &str,
        log_path: PathBuf,
        dir: Option<TempDir>,
    ) -> Self {
        let child = spawn_logged(&mut cmd, &log_path)
            .unwrap_or_else(|e| panic!("spawning {name} ({cmd:?}) failed: {e}"));
        Self {
            child,
            name: name.to_owned(),
            log_path,
            _dir: dir,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time (also the log file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends SIGTERM (no-op if the child has already been reaped).
    pub fn sigterm(&mut self) {
        signal(&mut self.child, Signal::SIGTERM);
    }

    /// Sends SIGKILL (no-op if the child has already been reaped); does not wait.
    pub fn sigkill(&mut self) {
        signal(&mut self.child, Signal::SIGKILL);
    }

    /// Sends SIGSTOP: the child is paused (as by a long GC pause or a frozen VM) until
    /// [`sigcont`](Self::sigcont).
    pub fn sigstop(&mut self) {
        signal(&mut self.child, Signal::SIGSTOP);
    }

    /// Sends SIGCONT: a paused child runs again.
    pub fn sigcont(&mut self) {
        signal(&mut self.child, Signal::SIGCONT);
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }

    /// Whether the child is still running (not yet exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Path of the file holding the child's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the child has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        kill_quietly(&mut self.child);
    }
}

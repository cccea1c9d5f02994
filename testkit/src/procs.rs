//! Looking at the machine's process table (`/proc`), for tests that assert what is (not) running.
//!
//! Prefer [`descendants`] over [`process_running`]: the suite runs in parallel with other tests
//! (and CI runs other things), so a machine-wide scan can match a process the test did not start.
//! [`process_running`] is for processes whose parent is gone (a SIGKILLed worker's orphans), and
//! then only with needles unique to the test (its own IPs and ports).

use std::fs;

/// One live (non-zombie) process: its id, parent id and command line (arguments joined by spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub cmdline: String,
}

/// Every live process that can be read; zombies and processes that vanish mid-scan are skipped.
pub fn processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = fs::read_to_string(e.path().join("status")).ok()?;
            if status.contains("State:\tZ") || status.contains("State:\tX") {
                return None;
            }
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse()
                .ok()?;
            let cmdline = fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline)
                .trim_end_matches('\0')
                .replace('\0', " ");
            Some(Proc { pid, ppid, cmdline })
        })
        .collect()
}

/// Whether `pid` exists and is neither a zombie nor dead (exited but not yet reaped counts as gone).
pub fn is_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        !s.lines()
            .any(|l| l.starts_with("State:\tZ") || l.starts_with("State:\tX"))
    })
}

/// Whether a live process's command line contains every needle.
pub fn process_running(needles: &[&str]) -> bool {
    processes()
        .iter()
        .any(|p| needles.iter().all(|n| p.cmdline.contains(n)))
}

/// The live descendants of `pid` (children, their children, …), not `pid` itself.
pub fn descendants(pid: u32) -> Vec<Proc> {
    let all = processes();
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == p.pid) {
                frontier.push(p.pid);
                found.push(p.clone());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    #[test]
    fn a_child_is_found_under_its_parent_and_by_its_command_line() {
        let mut sleeper = Command::new("sleep").arg("31.4159").spawn().unwrap();
        let me = std::process::id();
        // Right after the fork the child may not have exec'd yet (its command line is empty).
        let found = |pid| descendants(me).into_iter().find(|p| p.pid == pid);
        crate::wait_until(Duration::from_secs(5), "sleep has exec'd", || {
            found(sleeper.id()).is_some_and(|p| !p.cmdline.is_empty())
        });
        let seen = found(sleeper.id());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert_eq!(seen.map(|p| p.cmdline), Some("sleep 31.4159".to_string()));
        assert!(
            !process_running(&["sleep", "31.4159"]),
            "a reaped child is gone"
        );
        assert!(descendants(sleeper.id()).is_empty());
        assert!(!is_alive(sleeper.id()));
        assert!(is_alive(me));
    }
}

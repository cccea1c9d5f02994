//! A system one of whose nodes cannot send: shared by `health.rs` and `browser_health.rs`.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use podperf_testkit::{Cluster, ClusterOpts, WorkerSpec};

/// A directory holding an `fping` that runs the real one from an address nobody has.
pub fn broken_fping() -> tempfile::TempDir {
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("fping"))
        .find(|p| p.is_file())
        .expect("fping is installed");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fping");
    let body = format!(
        "#!/bin/sh\nexec {} \"$@\" -S 10.255.255.1\n",
        real.display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Three nodes; `pod-c` on `mute_node` cannot send (its fping is `fping`'s).
pub async fn cluster_with_a_mute_node(fping: &tempfile::TempDir, mute_node: &str) -> Cluster {
    let mut c = Cluster::start(ClusterOpts::default()).await;
    c.add_worker(WorkerSpec::new("pod-a", "node-1", "127.0.0.11"));
    c.add_worker(WorkerSpec::new("pod-b", "node-2", "127.0.0.12"));
    let mut mute = WorkerSpec::new("pod-c", mute_node, "127.0.0.13");
    let path = format!(
        "{}:{}",
        fping.path().display(),
        std::env::var("PATH").unwrap()
    );
    mute.env.push(("PATH".into(), path));
    c.add_worker(mute);
    c.wait_workers(&["pod-a", "pod-b", "pod-c"], Duration::from_secs(20))
        .await;
    c
}

//! Real `podperf-worker` processes (release build) with the env a DaemonSet gives them.

use std::process::Command;

use podperf_testkit::ChildGuard;

use crate::env::{bin, orig_path};

/// Where one real worker lives.
pub struct Spec {
    pub pod: String,
    pub node: String,
    pub ip: std::net::IpAddr,
}

pub fn spawn(nats_url: &str, s: &Spec) -> anyhow::Result<ChildGuard> {
    let mut cmd = Command::new(bin("podperf-worker")?);
    cmd.env_clear()
        .env("PATH", orig_path())
        .env("PODPERF_NATS_URL", nats_url)
        .env("POD_UID", uuid::Uuid::new_v4().to_string())
        .env("POD_NAME", &s.pod)
        .env("POD_NAMESPACE", "bench")
        .env("POD_IP", s.ip.to_string())
        .env("NODE_NAME", &s.node)
        .env("PODPERF_SHUTDOWN_GRACE_S", "2")
        .env("RUST_LOG", "warn");
    Ok(ChildGuard::spawn(cmd, &s.pod))
}

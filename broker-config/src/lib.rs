//! Dev-only helpers for the tests of `broker-config/` (the nats-server configs) and `k8s/` (the
//! kustomize base). The crate ships nothing: it exists so `cargo test` runs `tests/`.
//!
//! # Layout
//! - `tests/permissions.rs`: each role's credential against a real nats-server running
//!   `auth.conf` (worker, dispatcher, cli, web, admin): what it may do and what it may not.
//! - `tests/binaries.rs`: the real dispatcher, workers and CLI, each with its own credential.
//! - `tests/manifests.rs`: the worker DaemonSets' env against what the worker binary reads; the
//!   copies of the configs in `k8s/nats/`; the example credential files.
//! - `tests/monitoring.rs`: `k8s/monitoring/` (alert rules with promtool, the PrometheusRule, the
//!   Grafana dashboard) against the metrics contract.

use std::path::{Path, PathBuf};

/// The users of `auth.conf`, with the password each gets in the tests.
pub const USERS: [(&str, &str); 5] = [
    ("worker", "test-worker-pw"),
    ("dispatcher", "test-dispatcher-pw"),
    ("cli", "test-cli-pw"),
    ("web", "test-web-pw"),
    ("admin", "test-admin-pw"),
];

/// The route password `cluster.conf` expects in the tests.
pub const ROUTE_PASSWORD: &str = "test-route-pw";

/// `broker-config/`.
pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root (`broker-config/..`).
pub fn workspace_dir() -> PathBuf {
    config_dir()
        .parent()
        .expect("broker-config has a parent")
        .to_path_buf()
}

/// Reads a file relative to the workspace root, panicking with its path.
pub fn read(relative: impl AsRef<Path>) -> String {
    let path = workspace_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The test password of `user`.
pub fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no user {user:?} in auth.conf"))
}

/// `auth.conf` inlined after definitions of its password variables, plus a JetStream store in
/// the test server's temp dir: the text for `NatsServer::start_with_config`. (The testkit
/// writes the config into a temp dir, where `include ./auth.conf` would not resolve, and the
/// variables are defined in the file so the test process's environment is left alone.)
pub fn auth_server_config() -> String {
    let mut conf = String::new();
    for (user, pw) in USERS {
        conf += &format!("{}: \"{pw}\"\n", password_variable(user));
    }
    conf += &read("broker-config/auth.conf");
    conf += "\njetstream { store_dir: \"{store_dir}\" }\n";
    conf
}

/// The variable holding `user`'s password, e.g. `PODPERF_WORKER_PASSWORD`.
pub fn password_variable(user: &str) -> String {
    format!("PODPERF_{}_PASSWORD", user.to_uppercase())
}

/// Every `$PODPERF_…` variable a nats-server config refers to.
pub fn config_variables(conf: &str) -> Vec<String> {
    let mut vars: Vec<String> = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split('$').skip(1))
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|v| v.starts_with("PODPERF_"))
        .collect();
    vars.sort();
    vars.dedup();
    vars
}

/// The keys of a `KEY=value` env file (comments and blank lines skipped).
pub fn env_file_keys(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .collect()
}

/// The `env = "…"` names of clap arguments in a Rust source file.
pub fn clap_env_names(source: &str) -> Vec<String> {
    source
        .split("env = \"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_env_keys_and_clap_env_names() {
        let conf =
            "# $PODPERF_IN_COMMENT\npassword: $PODPERF_A_PASSWORD, x: $OTHER\ny: $PODPERF_B}";
        assert_eq!(config_variables(conf), ["PODPERF_A_PASSWORD", "PODPERF_B"]);
        assert_eq!(env_file_keys("# c\n\nA=1\n B = 2\n"), ["A", "B"]);
        let src = r#"#[arg(long, env = "POD_UID")] x: u8, #[arg(env = "PODPERF_X", default_value_t = 1)]"#;
        assert_eq!(clap_env_names(src), ["POD_UID", "PODPERF_X"]);
    }
}

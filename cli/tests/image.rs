//! The container image as a tested artifact: `scripts/build-image.sh` builds it (offline: a
//! debootstrap base and the binaries next to this test), `testbed/testbed.sh up --image` runs the
//! dispatcher and every worker as containers of it inside the testbed's namespaces with the
//! DaemonSets' user, capabilities, read-only root and env, and the whole matrix succeeds. A worker
//! container without NET_RAW reports ping as a typed failure and keeps running.
//!
//! Skips (and says why) where the testbed cannot run (not root) or neither podman nor docker can
//! run; the testbed part needs podman (docker cannot join a named network namespace).
//! Run it alone with `cargo test -p podperf-cli --test image -- --nocapture`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use podperf_testkit::workspace_bin;

#[path = "support/testbed.rs"]
mod support;
use support::{state_root, testbed_usable, text, Testbed};

/// This test's own tag (test runs of other checkouts may build at the same time).
fn tag() -> String {
    format!("localhost/podperf:test-{}", std::process::id())
}
/// CapBnd of a worker: NET_RAW (bit 13) and nothing else.
const NET_RAW_ONLY: &str = "0000000000002000";

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn podman(args: &[&str]) -> Output {
    let mut cmd = Command::new("podman");
    if Command::new("runc").arg("--version").output().is_ok() {
        cmd.args(["--runtime", "runc"]);
    }
    cmd.args(args).output().expect("run podman")
}

/// Removes the named containers when dropped, so a failing assertion leaves none behind.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = podman(&["rm", "-f", "-t", "0", name]);
        }
    }
}

/// Removes this test's image when dropped (after the testbed, declared later, is down).
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        for engine in ["podman", "docker"] {
            let out = Command::new(engine).args(["rmi", &self.0]).output();
            if out.is_ok_and(|o| o.status.success()) {
                break;
            }
        }
    }
}

/// `/proc/PID/status` of the container's main process.
fn proc_status(container: &str) -> String {
    let out = podman(&["inspect", "-f", "{{.State.Pid}}", container]);
    let pid = text(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && pid != "0",
        "{container} is not running: {out:?}"
    );
    std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status")
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{key} missing from {status}"))
}

/// The env names a manifest's container gets (read with yq, as the testbed does).
fn manifest_env_names(manifest: &Path) -> BTreeSet<String> {
    let out = Command::new("yq")
        .args(["-r", ".spec.template.spec.containers[0].env[].name"])
        .arg(manifest)
        .output()
        .expect("run yq");
    assert!(out.status.success(), "yq: {}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

/// The env names of the container's main process, without those every image process has.
fn process_env_names(container: &str) -> BTreeSet<String> {
    let out = podman(&["inspect", "-f", "{{.State.Pid}}", container]);
    let pid = text(&out.stdout).trim().to_string();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    text(&environ)
        .split('\0')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
        .filter(|k| !["PATH", "HOME", "HOSTNAME", "TERM", "container"].contains(&k.as_str()))
        .collect()
}

/// Checks a worker container against its DaemonSet: user, capabilities, read-only root, /tmp,
/// and exactly the manifest's env names.
fn assert_like_daemonset(container: &str, manifest: &Path) {
    let status = proc_status(container);
    assert!(
        status_field(&status, "Uid").starts_with("10001\t"),
        "{status}"
    );
    assert!(
        status_field(&status, "Gid").starts_with("10001\t"),
        "{status}"
    );
    assert_eq!(status_field(&status, "CapBnd"), NET_RAW_ONLY, "{container}");
    assert_eq!(
        status_field(&status, "CapAmb"),
        "0000000000000000",
        "{container}"
    );
    // allowPrivilegeEscalation: true (no_new_privs would mask ping's file capability).
    assert_eq!(status_field(&status, "NoNewPrivs"), "0", "{container}");
    assert_eq!(
        status_field(&status, "CapInh"),
        "0000000000000000",
        "{container}"
    );
    let inspect = podman(&["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", container]);
    assert_eq!(
        text(&inspect.stdout).trim(),
        "true",
        "{container}: read-only root"
    );
    assert_eq!(
        process_env_names(container),
        manifest_env_names(manifest),
        "{container}: env names differ from {}",
        manifest.display()
    );
}

fn build_image(bin_dir: &Path) -> Option<Output> {
    let t0 = Instant::now();
    let out = Command::new(repo().join("scripts/build-image.sh"))
        .arg(tag())
        .env("PODPERF_IMAGE_BIN_DIR", bin_dir)
        .output()
        .expect("run build-image.sh");
    let log = text(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: neither podman nor docker can run here: {log}");
        return None;
    }
    assert!(out.status.success(), "build-image.sh failed: {log}");
    eprintln!(
        "image {} built in {:.1} s: {}",
        tag(),
        t0.elapsed().as_secs_f64(),
        log.lines()
            .filter(|l| l.starts_with("build-image:"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Some(out)
}

/// Starts one more worker in pod-0-1's namespace with pod-0-1's derived flags minus NET_RAW.
fn start_worker_without_net_raw(tb: &Testbed, name: &str) -> Containers {
    let env_dir = state_root().join(&tb.run_id).join("env");
    let args = std::fs::read_to_string(env_dir.join("pod-0-1.args")).expect("pod-0-1.args");
    let env = std::fs::read_to_string(env_dir.join("pod-0-1.env")).expect("pod-0-1.env");
    let uid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("uuid");
    let env: String = env
        .lines()
        .map(|l| match l.split_once('=') {
            Some(("POD_NAME", _)) => "POD_NAME=noraw-0-1".to_string(),
            Some(("POD_UID", _)) => format!("POD_UID={}", uid.trim()),
            _ => l.to_string(),
        })
        .chain(["PODPERF_IPERF3_PORT=5203".to_string()])
        .map(|l| l + "\n")
        .collect();
    let env_file = env_dir.join("noraw.env");
    std::fs::write(&env_file, env).expect("write env file");
    let mut argv: Vec<String> = vec!["run".into(), "-d".into()];
    let mut it = args.lines().map(String::from).peekable();
    let mut saw_net_raw = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cap-add" if it.peek().map(String::as_str) == Some("NET_RAW") => {
                it.next();
                saw_net_raw = true;
            }
            "--name" => {
                it.next();
                argv.extend(["--name".into(), name.into()]);
            }
            "--env-file" => {
                it.next();
                argv.extend(["--env-file".into(), env_file.display().to_string()]);
            }
            _ => argv.push(a),
        }
    }
    assert!(saw_net_raw, "pod-0-1 runs with NET_RAW: {args}");
    let guard = Containers(vec![name.to_string()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = podman(&argv);
    assert!(
        out.status.success(),
        "podman run {argv:?}: {}",
        text(&out.stderr)
    );
    guard
}

#[test]
fn image_runs_the_testbed_like_the_daemonsets() {
    if !testbed_usable() {
        return;
    }
    let bin_dir = workspace_bin("podperf-worker")
        .parent()
        .expect("bin dir")
        .to_path_buf();
    if build_image(&bin_dir).is_none() {
        return;
    }
    let _image = Image(tag());
    let podman_runs = Command::new("podman").arg("--version").output().is_ok()
        && podman(&["info"]).status.success();
    if !podman_runs {
        eprintln!("SKIPPED (testbed part): testbed --image needs podman, which cannot run here");
        return;
    }
    let t0 = Instant::now();
    let mut tb = Testbed::up_with(2, 2, 'i', &["--image", &tag()]);
    eprintln!(
        "testbed up with the image in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let run = tb.run_id.clone();
    let label = format!("label=podperf.testbed.run={run}");
    let names = text(&podman(&["ps", "--filter", &label, "--format", "{{.Names}}"]).stdout);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    let want: Vec<String> = [
        "dispatcher",
        "host-0",
        "host-1",
        "pod-0-0",
        "pod-0-1",
        "pod-1-0",
        "pod-1-1",
        "web",
    ]
    .iter()
    .map(|n| format!("ppt-{run}-{n}"))
    .collect();
    assert_eq!(
        names, want,
        "one container per worker, the dispatcher and podperf-web"
    );

    let workers = repo().join("k8s/base/workers");
    assert_like_daemonset(
        &format!("ppt-{run}-pod-1-0"),
        &workers.join("worker-a.yaml"),
    );
    assert_like_daemonset(
        &format!("ppt-{run}-host-1"),
        &workers.join("worker-host.yaml"),
    );
    let dispatcher = proc_status(&format!("ppt-{run}-dispatcher"));
    assert_eq!(status_field(&dispatcher, "CapBnd"), "0000000000000000");
    assert!(status_field(&dispatcher, "Uid").starts_with("10001\t"));
    // The dispatcher keeps allowPrivilegeEscalation: false.
    assert_eq!(status_field(&dispatcher, "NoNewPrivs"), "1");

    // podperf-web from the image, as its Deployment runs it (0.0.0.0:8080 with a token): ready,
    // and the API answers with the token and refuses without it.
    let web = proc_status(&format!("ppt-{run}-web"));
    assert_eq!(status_field(&web, "CapBnd"), "0000000000000000");
    assert!(status_field(&web, "Uid").starts_with("10001\t"));
    let token = std::fs::read_to_string(state_root().join(&run).join("web-token")).unwrap();
    let http = |path: &str, token: &str| {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET {path} HTTP/1.0\\r\\nAuthorization: \
             Bearer {token}\\r\\n\\r\\n' >&3 && cat <&3"
        );
        text(&tb.exec(&["bash", "-c", &script]).stdout)
    };
    // The status code of a raw HTTP answer ("HTTP/1.x 200 OK …" → "200").
    let code = |answer: &str| answer.split_whitespace().nth(1).unwrap_or("").to_string();
    let t0 = Instant::now();
    while code(&http("/readyz", "")) != "200" {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "podperf-web never became ready: {}\n{}",
            http("/readyz", ""),
            tb.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let workers = http("/api/v2/workers", token.trim());
    assert!(
        code(&workers) == "200" && workers.contains("pod-1-0"),
        "{workers}"
    );
    assert_eq!(code(&http("/api/v2/workers", "wrong")), "401");

    // The whole matrix, and traceroute over ICMP (a raw socket through traceroute's file capability).
    let r = tb.podperf(&[
        "matrix",
        "--samples",
        "1",
        "--duration",
        "1",
        "--count",
        "3",
    ]);
    let p = &r["progress"];
    assert_eq!(p["finished"], true, "{r:#}");
    assert!(p["jobs"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(p["jobs_succeeded"], p["jobs"], "every job succeeded: {r:#}");
    let job = tb.podperf(&[
        "run",
        "traceroute",
        "--protocol",
        "icmp",
        "--from",
        "pod-0-0",
        "--to",
        "pod-1-0",
    ]);
    assert_eq!(job["state"], "succeeded", "{job:#}");

    // Without NET_RAW, ping is a typed failure of the job; the worker keeps running.
    let noraw = format!("ppt-{run}-noraw");
    let guard = start_worker_without_net_raw(&tb, &noraw);
    let all = [
        "host-0",
        "host-1",
        "noraw-0-1",
        "pod-0-0",
        "pod-0-1",
        "pod-1-0",
        "pod-1-1",
    ];
    tb.wait_pods(&all, Duration::from_secs(30));
    let status = proc_status(&noraw);
    assert_eq!(
        status_field(&status, "CapBnd"),
        "0000000000000000",
        "{status}"
    );
    let (code, job, err) = tb.try_podperf(&[
        "run",
        "ping",
        "--from",
        "noraw-0-1",
        "--to",
        "pod-0-0",
        "--count",
        "1",
    ]);
    assert_eq!(code, Some(2), "a failed job exits 2: {job:#} {err}");
    assert_eq!(job["state"], "failed", "{job:#}");
    assert_eq!(job["reason"], "tool_error", "{job:#}");
    let message = job["message"].as_str().unwrap_or_default();
    assert!(message.contains("Operation not permitted"), "{job:#}");
    let running = podman(&["inspect", "-f", "{{.State.Running}}", &noraw]);
    assert_eq!(
        text(&running.stdout).trim(),
        "true",
        "the worker without NET_RAW crashed"
    );
    drop(guard);

    let out = tb.down();
    assert!(out.status.success(), "down: {}", text(&out.stderr));
    let left = text(&podman(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]).stdout);
    assert!(
        left.trim().is_empty(),
        "containers of run {run} left: {left}"
    );
}

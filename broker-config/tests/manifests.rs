//! The k8s/ manifests against what the binaries read, and the files that must agree.

use std::collections::BTreeSet;

use podperf_broker_tests::{clap_env_names, config_variables, env_file_keys, read, workspace_dir};
use serde_yaml::Value;

/// The Downward API variables, exactly as the worker reads them, with their field paths.
const DOWNWARD: [(&str, &str); 8] = [
    ("POD_NAME", "metadata.name"),
    ("POD_UID", "metadata.uid"),
    ("POD_IP", "status.podIP"),
    ("POD_NAMESPACE", "metadata.namespace"),
    ("NODE_NAME", "spec.nodeName"),
    ("NODE_IP", "status.hostIP"),
    ("POD_IPS", "status.podIPs"),
    ("HOST_IPS", "status.hostIPs"),
];

const WORKER_FILES: [&str; 3] = ["worker-a.yaml", "worker-b.yaml", "worker-host.yaml"];

fn daemonset(file: &str) -> Value {
    let text = read(format!("k8s/base/workers/{file}"));
    let v: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(v["kind"], "DaemonSet", "{file}");
    v
}

fn worker_container(ds: &Value) -> &Value {
    let containers = ds["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// name -> (literal value, fieldRef path) of a container's env.
fn env_of(container: &Value) -> Vec<(String, Option<String>, Option<String>)> {
    container["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("env name").to_string(),
                e["value"].as_str().map(String::from),
                e["valueFrom"]["fieldRef"]["fieldPath"]
                    .as_str()
                    .map(String::from),
            )
        })
        .collect()
}

/// What `podperf-worker` reads: its own `env = "…"` names plus the shared NATS flags.
fn worker_reads() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = clap_env_names(&read("worker/src/main.rs"))
        .into_iter()
        .collect();
    names.extend(clap_env_names(&read("connect/src/lib.rs")));
    assert!(names.contains("POD_UID") && names.contains("PODPERF_NATS_URL"));
    names
}

#[test]
fn worker_daemonsets_env_matches_what_the_worker_reads() {
    let reads = worker_reads();
    for file in WORKER_FILES {
        let ds = daemonset(file);
        let env = env_of(worker_container(&ds));
        let names: BTreeSet<&str> = env.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names.len(), env.len(), "{file}: an env name is repeated");
        for name in &names {
            let known = reads.contains(*name) || *name == "RUST_LOG";
            assert!(
                known,
                "{file}: {name} is not read by podperf-worker ({reads:?})"
            );
        }
        for (name, path) in DOWNWARD {
            let found = env.iter().find(|(n, _, _)| n == name);
            let field = found.and_then(|(_, _, f)| f.as_deref());
            assert_eq!(
                field,
                Some(path),
                "{file}: {name} must come from fieldRef {path}"
            );
        }
        let downward: BTreeSet<&str> = env
            .iter()
            .filter(|(_, _, f)| f.is_some())
            .map(|(n, _, _)| n.as_str())
            .collect();
        assert_eq!(
            downward,
            DOWNWARD.iter().map(|(n, _)| *n).collect(),
            "{file}"
        );
        let value = |name: &str| {
            env.iter()
                .find(|(n, _, _)| n == name)
                .and_then(|e| e.1.clone())
        };
        assert_eq!(
            value("PODPERF_NATS_USER").as_deref(),
            Some("worker"),
            "{file}"
        );
        let host_network = ds["spec"]["template"]["spec"]["hostNetwork"] == Value::Bool(true);
        let port = value("PODPERF_IPERF3_PORT").unwrap_or_else(|| "5201".into());
        if host_network {
            assert_eq!(
                value("PODPERF_HOST_NETWORK").as_deref(),
                Some("true"),
                "{file}"
            );
            assert_ne!(
                port, "5201",
                "{file}: the host worker must not take the default port"
            );
        } else {
            assert_eq!(value("PODPERF_HOST_NETWORK"), None, "{file}");
        }
        let sockperf = value("PODPERF_SOCKPERF_PORT").unwrap_or_else(|| "11111".into());
        if host_network {
            assert_ne!(
                sockperf, "11111",
                "{file}: the host worker must not take the default"
            );
        }
        let ports = worker_container(&ds)["ports"].as_sequence().expect("ports");
        assert!(
            ports.iter().all(|p| {
                let want = match p["name"].as_str() {
                    Some(n) if n.starts_with("sockperf") => &sockperf,
                    _ => &port,
                };
                p["containerPort"].as_u64().map(|n| n.to_string()).as_ref() == Some(want)
            }),
            "{file}: containerPort != iperf3 port {port} / sockperf port {sockperf}"
        );
    }
}

#[test]
fn two_pod_network_workers_and_one_host_network_worker_per_node() {
    let host: Vec<bool> = WORKER_FILES
        .iter()
        .map(|f| daemonset(f)["spec"]["template"]["spec"]["hostNetwork"] == Value::Bool(true))
        .collect();
    assert_eq!(host, [false, false, true]);
    for file in WORKER_FILES {
        let ds = daemonset(file);
        let sc = &worker_container(&ds)["securityContext"];
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{file}");
        assert_eq!(sc["capabilities"]["add"][0], "NET_RAW", "{file}");
        let tolerations = &ds["spec"]["template"]["spec"]["tolerations"];
        assert_eq!(
            tolerations[0]["operator"], "Exists",
            "{file}: every node gets workers"
        );
    }
}

#[test]
fn k8s_copies_of_the_broker_configs_are_identical() {
    for f in ["cluster.conf", "single.conf", "auth.conf"] {
        assert_eq!(
            read(format!("k8s/base/nats/{f}")),
            read(format!("broker-config/{f}")),
            "k8s/base/nats/{f} drifted: cp broker-config/{f} k8s/base/nats/"
        );
    }
}

#[test]
fn every_config_variable_has_an_example_and_a_secret_key() {
    let mut vars = BTreeSet::new();
    for entry in std::fs::read_dir(workspace_dir().join("broker-config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "conf") {
            vars.extend(config_variables(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    assert!(vars.contains("PODPERF_WORKER_PASSWORD") && vars.contains("PODPERF_ROUTE_PASSWORD"));
    let local: BTreeSet<String> = env_file_keys(&read("broker-config/credentials.env.example"))
        .into_iter()
        .collect();
    let k8s: BTreeSet<String> = env_file_keys(&read("k8s/base/credentials.env.example"))
        .into_iter()
        .collect();
    assert_eq!(
        local, vars,
        "broker-config/credentials.env.example vs the configs' variables"
    );
    assert!(
        k8s.is_superset(&vars),
        "k8s/base/credentials.env.example lacks some of {vars:?}"
    );
    // Every secret key the manifests refer to is in the example.
    for text in [
        read("k8s/base/nats/statefulset.yaml"),
        read("k8s/base/redis/statefulset.yaml"),
        read("k8s/base/dispatcher/deployment.yaml"),
        read("k8s/base/web/deployment.yaml"),
        read("k8s/base/workers/worker-a.yaml"),
    ] {
        for key in text.split("key: ").skip(1) {
            let key: String = key
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                k8s.contains(&key),
                "secret key {key} is not in credentials.env.example"
            );
        }
    }
}

/// podperf-web: two replicas, non-root, probes on /healthz and /readyz, a token from the Secret
/// (it listens beyond loopback), only variables the binary reads; a ClusterIP Service on 8080.
#[test]
fn web_deployment_and_service() {
    let text = read("k8s/base/web/deployment.yaml");
    let d: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["command"][0], "podperf-web");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    let mut reads: BTreeSet<String> = clap_env_names(&read("web/src/main.rs"))
        .into_iter()
        .collect();
    reads.extend(clap_env_names(&read("connect/src/lib.rs")));
    reads.insert("RUST_LOG".into());
    let env = env_of(c);
    for (name, _, _) in &env {
        assert!(reads.contains(name), "podperf-web does not read {name}");
    }
    let user = env.iter().find(|(n, _, _)| n == "PODPERF_NATS_USER");
    assert_eq!(user.and_then(|(_, v, _)| v.as_deref()), Some("web"));
    let token = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PODPERF_WEB_TOKEN")
        .expect("a token: podperf-web refuses 0.0.0.0 without one");
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["key"],
        "PODPERF_WEB_TOKEN"
    );

    let s: Value = serde_yaml::from_str(&read("k8s/base/web/service.yaml")).unwrap();
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["ports"][0]["port"], 8080);
    assert!(read("k8s/base/kustomization.yaml").contains("web/deployment.yaml"));
}

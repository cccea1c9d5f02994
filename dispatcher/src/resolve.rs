//! Resolves a worker reference — its id, its pod name, or a unique prefix of either — against the
//! live workers.

use std::borrow::Borrow;

use podperf_protocol::api::{ApiError, ErrorCode};
use podperf_protocol::worker::{WorkerInfo, WorkerView};

/// The live worker `name` refers to. `known` (workers seen before) tells "offline" from "unknown".
pub fn resolve<'a, V: Borrow<WorkerView>>(
    name: &str,
    live: &'a [V],
    known: &[WorkerInfo],
) -> Result<&'a WorkerView, ApiError> {
    let exact: Vec<&WorkerView> = live
        .iter()
        .map(Borrow::borrow)
        .filter(|w| w.info.worker_id == name || w.info.pod_name == name)
        .collect();
    let matches = if exact.is_empty() {
        live.iter()
            .map(Borrow::borrow)
            .filter(|w| w.info.worker_id.starts_with(name) || w.info.pod_name.starts_with(name))
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(not_live(name, known)),
        many => {
            let names: Vec<&str> = many.iter().map(|w| w.info.pod_name.as_str()).collect();
            Err(ApiError::new(
                ErrorCode::AmbiguousWorker,
                format!(
                    "{name:?} matches {} workers: {}",
                    many.len(),
                    names.join(", ")
                ),
            ))
        }
    }
}

fn not_live(name: &str, known: &[WorkerInfo]) -> ApiError {
    let seen = known
        .iter()
        .find(|w| w.worker_id == name || w.pod_name == name);
    match seen {
        Some(w) => ApiError::new(
            ErrorCode::WorkerOffline,
            format!(
                "worker {} ({}) is offline: its liveness key has expired",
                w.pod_name, w.worker_id
            ),
        ),
        None => ApiError::new(
            ErrorCode::UnknownWorker,
            format!("no worker matches {name:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str, pod: &str) -> WorkerView {
        WorkerView {
            info: WorkerInfo {
                worker_id: id.into(),
                pod_name: pod.into(),
                pod_namespace: None,
                pod_ip: "127.0.0.2".parse().unwrap(),
                node_name: "n1".into(),
                node_ip: None,
                pod_ips: vec![],
                node_ips: vec![],
                host_network: false,
                tools: vec![],
                iperf3_port: 5201,
                sockperf_port: 11111,
                max_concurrent_jobs: 1,
                started_at_ms: 0,
                version: "0".into(),
            },
            last_seen_at_ms: 0,
        }
    }

    #[test]
    fn by_id_pod_name_or_unique_prefix() {
        let live = [
            view("aaa111", "podperf-worker-x"),
            view("bbb222", "podperf-worker-y"),
        ];
        assert_eq!(
            resolve("aaa111", &live, &[]).unwrap().info.worker_id,
            "aaa111"
        );
        assert_eq!(
            resolve("podperf-worker-y", &live, &[])
                .unwrap()
                .info
                .worker_id,
            "bbb222"
        );
        assert_eq!(resolve("bb", &live, &[]).unwrap().info.worker_id, "bbb222");
        assert_eq!(
            resolve("podperf-worker-x", &live, &[])
                .unwrap()
                .info
                .worker_id,
            "aaa111"
        );
    }

    #[test]
    fn ambiguous_unknown_offline() {
        let live = [
            view("aaa111", "podperf-worker-x"),
            view("bbb222", "podperf-worker-y"),
        ];
        assert_eq!(
            resolve("podperf", &live, &[]).unwrap_err().code,
            ErrorCode::AmbiguousWorker
        );
        assert_eq!(
            resolve("zzz", &live, &[]).unwrap_err().code,
            ErrorCode::UnknownWorker
        );
        let gone = view("ccc333", "old").info;
        assert_eq!(
            resolve("old", &live, &[gone]).unwrap_err().code,
            ErrorCode::WorkerOffline
        );
    }

    #[test]
    fn an_exact_name_beats_a_prefix_of_another() {
        let live = [view("w1", "pod"), view("w2", "pod-2")];
        assert_eq!(resolve("pod", &live, &[]).unwrap().info.worker_id, "w1");
    }
}

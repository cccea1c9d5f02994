//! Remembered workers.

use super::*;

fn info(id: &str, pod: &str, iperf3: bool) -> WorkerInfo {
    WorkerInfo {
        worker_id: id.into(),
        pod_name: pod.into(),
        pod_namespace: None,
        pod_ip: "10.244.0.9".parse().unwrap(),
        node_name: "n1".into(),
        node_ip: Some("192.168.0.1".parse().unwrap()),
        pod_ips: vec![],
        node_ips: vec![],
        host_network: false,
        tools: vec![ToolInfo {
            tool: Tool::Iperf3,
            available: iperf3,
            path: None,
            version: None,
        }],
        iperf3_port: 5201,
        sockperf_port: 11111,
        max_concurrent_jobs: 1,
        started_at_ms: 42,
        version: "t".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_workers_are_known() {
    let redis = RedisServer::start();
    let store = store(&redis).await;
    assert!(store.known_workers().await.unwrap().is_empty());
    let a = info("id-a", "pod-a", true);
    let b = info("id-b", "pod-b", false);
    store.remember_worker(&a).await.unwrap();
    store.remember_worker(&b).await.unwrap();
    // Remembering again replaces the entry (the newest info wins).
    let mut a2 = a.clone();
    a2.started_at_ms = 43;
    store.remember_worker(&a2).await.unwrap();
    let mut known = store.known_workers().await.unwrap();
    known.sort_by(|x, y| x.worker_id.cmp(&y.worker_id));
    assert_eq!(known, vec![a2, b]);
}

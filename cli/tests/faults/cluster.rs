//! Scenario 5: a 3-node NATS JetStream cluster (as `broker-config/cluster.conf`: cluster
//! `podperf`, JetStream on every node, monitoring on), the bucket and stream at R3. The server
//! leading the results stream is SIGKILLed mid-batch: jobs keep completing; restarted, it
//! rejoins (routes back, its stream replica current again).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use podperf_protocol::names::RESULTS_STREAM;
use podperf_testkit::{free_port, NatsServer};
use serde_json::Value;

use crate::harness::{blocking, eventually, long, noops, ping, DispatcherOpts, Sys};

/// `broker-config/cluster.conf` minus what needs Kubernetes (fixed ports, pid file, DNS routes,
/// the auth include — permissions are tested in `broker-config/tests/`), on loopback ports.
fn node_config(name: &str, http: u16, route: u16, routes: &[u16]) -> String {
    let routes: Vec<String> = routes
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect();
    format!(
        r#"server_name: {name}
http: 127.0.0.1:{http}
jetstream {{
  store_dir: "{{store_dir}}"
  max_memory_store: 256MB
  max_file_store: 1GB
}}
cluster {{
  name: podperf
  listen: 127.0.0.1:{route}
  routes: [{}]
  connect_retries: 120
}}
"#,
        routes.join(", ")
    )
}

/// GET `path` from a monitoring port, as JSON.
fn monitor(port: u16, path: &str) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    serde_json::from_str(body.split_once("\r\n\r\n")?.1).ok()
}

/// The results stream's cluster info (leader and replicas) as the JetStream API reports it.
async fn stream_cluster(sys: &Sys) -> Option<Value> {
    let req = sys
        .nats_client()
        .request(format!("$JS.API.STREAM.INFO.{RESULTS_STREAM}"), "{}".into());
    let msg = tokio::time::timeout(Duration::from_secs(10), req)
        .await
        .ok()?
        .ok()?;
    let reply: Value = serde_json::from_slice(&msg.payload).ok()?;
    reply.get("cluster").cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_a_cluster_node_sigkilled_mid_batch_jobs_keep_completing_and_it_rejoins() {
    let n = if long() { 3_000 } else { 600 };
    let names = ["n0", "n1", "n2"];
    let http: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let route: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let servers: Vec<NatsServer> = blocking(|| {
        (0..3)
            .map(|i| {
                NatsServer::start_with_config(&node_config(names[i], http[i], route[i], &route))
            })
            .collect()
    });
    // JetStream needs its meta leader before the dispatcher can create R3 assets.
    eventually(
        Duration::from_secs(30),
        "the cluster elects a meta leader",
        || async {
            let jsz = monitor(http[0], "/jsz")?;
            let size = jsz["meta_cluster"]["cluster_size"].as_u64()?;
            (size == 3 && jsz["meta_cluster"]["leader"].is_string()).then_some(())
        },
    )
    .await;
    let mut sys = Sys::with_servers(
        servers,
        DispatcherOpts {
            replicas: 3,
            ..Default::default()
        },
    )
    .await;
    sys.add_worker("pod-a", "node-1", "127.0.0.111", 200);
    sys.add_worker("pod-b", "node-2", "127.0.0.112", 200);
    sys.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(20))
        .await;

    let cluster = stream_cluster(&sys).await.expect("stream info");
    assert_eq!(
        cluster["replicas"].as_array().map(Vec::len),
        Some(2),
        "R3: a leader and two replicas: {cluster}"
    );
    let leader = cluster["leader"].as_str().unwrap().to_string();
    let victim = names.iter().position(|n| *n == leader).unwrap();

    let mut ids = {
        let mut jobs = noops("pod-a", n / 2, 1_000);
        jobs.extend(noops("pod-b", n / 2, 1_000));
        jobs.push(ping("pod-a", "pod-b", 10));
        sys.submit_ok(jobs).await
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    blocking(|| sys.nats[victim].kill());
    let killed = Instant::now();

    // Jobs submitted after the kill are accepted and complete.
    let after = eventually(Duration::from_secs(30), "a submit succeeds", || async {
        sys.submit(noops("pod-b", 50, 0)).await.ok()
    })
    .await;
    let accepted_after = killed.elapsed();
    sys.wait_terminal(&after, Duration::from_secs(60)).await;
    let new_jobs_done = killed.elapsed();
    sys.wait_terminal(&ids, Duration::from_secs(90)).await;
    let batch_done = killed.elapsed();
    let new_leader = stream_cluster(&sys).await.unwrap()["leader"].clone();

    // The killed node comes back and catches up.
    blocking(|| sys.nats[victim].restart());
    let restarted = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the node has its routes back",
        || async {
            let routez = monitor(http[victim], "/routez")?;
            (routez["num_routes"].as_u64()? >= 2).then_some(())
        },
    )
    .await;
    let routes_back = restarted.elapsed();
    let replica_current = eventually(
        Duration::from_secs(60),
        "its stream replica is current",
        || async {
            let c = stream_cluster(&sys).await?;
            let all_current = c["replicas"]
                .as_array()?
                .iter()
                .all(|r| r["current"] == true && r["offline"] != true);
            let back = c["leader"] == names[victim]
                || c["replicas"]
                    .as_array()?
                    .iter()
                    .any(|r| r["name"] == names[victim]);
            (all_current && back).then(|| restarted.elapsed())
        },
    )
    .await;
    // And the whole cluster still takes jobs.
    let last = sys.submit_ok(noops("pod-a", 20, 0)).await;
    sys.wait_terminal(&last, Duration::from_secs(30)).await;

    ids.extend(after.iter().chain(&last));
    let audit = sys.audit(&ids, &ids).await;
    println!(
        "FIGURES s5: {} jobs; SIGKILL of {leader} (results-stream leader; new leader \
         {new_leader}); a submit after the kill accepted {accepted_after:?} after it, its 50 jobs \
         done {new_jobs_done:?} after it; batch \
         done {batch_done:?} after it; restart→routes back {routes_back:?}; restart→replica \
         current {replica_current:?}",
        ids.len()
    );
    if std::env::var_os("PODPERF_FAULTS_LOGS").is_some() {
        println!("{}", sys.logs());
    }
    audit.check("s5 cluster node SIGKILL", &sys);
}

//! Scenario 5: a 3-node NATS JetStream cluster (as `broker-config/cluster.conf`: cluster
//! `podperf`, JetStream on every node, monitoring on), the bucket and stream at R3. The server
//! leading the results stream is SIGKILLed mid-batch: jobs keep completing; restarted, it
//! rejoins (routes back, its stream replica current again).

use std::time::{Duration, Instant};

use crate::harness::{
    blocking, eventually, long, noops, ping, stream_cluster, DispatcherOpts, NatsNodes, Sys,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_a_cluster_node_sigkilled_mid_batch_jobs_keep_completing_and_it_rejoins() {
    let n = if long() { 3_000 } else { 600 };
    let (servers, nodes) = NatsNodes::start().await;
    let names = nodes.names;
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
    let (routes_back, replica_current) = nodes.rejoined(&sys, victim, restarted).await;
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

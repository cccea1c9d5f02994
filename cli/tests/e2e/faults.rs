//! Workers, the dispatcher, Redis and NATS failing mid-work: every job ends once, nothing lost.

use super::*;

#[test]
fn sigkill_of_the_source_worker_mid_iperf3_ends_the_job_worker_lost() {
    let mut c = Cluster::two_workers("127.0.0.21", "127.0.0.22");

    let id = c.submit(&[
        "run",
        "iperf3",
        "--from",
        "pod-a",
        "--to",
        "pod-b",
        "--duration",
        "30",
    ]);
    c.wait_job(&id, Some("running"), Duration::from_secs(10));
    let client = ["-c", "127.0.0.22"];
    assert!(process_running(&client), "the iperf3 client runs");
    c.workers[0].proc.sigkill();

    let job = c.wait_job(&id, None, Duration::from_secs(TTL_S + 10));
    assert_eq!(job["state"], "worker_lost", "{job}\n{}", c.logs());
    assert!(
        job["message"].as_str().unwrap().contains("liveness"),
        "{job}"
    );
    wait_until(
        Duration::from_secs(5),
        "the orphaned iperf3 client is gone",
        || !process_running(&client),
    );
}

#[test]
fn a_job_past_its_deadline_times_out_and_a_cancelled_job_stays_cancelled() {
    let c = Cluster::two_workers("127.0.0.23", "127.0.0.24");

    let args = [
        "run",
        "ping",
        "--from",
        "pod-a",
        "--to",
        "pod-b",
        "--count",
        "50",
        "--timeout",
        "2",
    ];
    let (out, job) = c.json(&args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a job that did not succeed exits 2"
    );
    assert_eq!(job["state"], "timed_out", "{job}");

    let id = c.submit(&[
        "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "100",
    ]);
    c.wait_job(&id, Some("running"), Duration::from_secs(10));
    let watch = watch(&c);
    let (out, job) = c.json(&["cancel", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(job["state"], "cancelled", "{job}");
    wait_until(Duration::from_secs(5), "the ping is stopped", || {
        !process_running(&["ping", "127.0.0.24", "-c", "100"])
    });
    // The worker's own (cancelled) outcome arrives later and must not overwrite the state: wait
    // until it is published and the dispatcher has stored it, then read the state again.
    wait_results(&watch, std::slice::from_ref(&id), Duration::from_secs(10));
    c.wait_ingested();
    assert_eq!(c.job(&id)["state"], "cancelled");
}

#[test]
fn results_published_while_the_dispatcher_is_down_are_stored_after_it_restarts() {
    let mut c = Cluster::two_workers("127.0.0.25", "127.0.0.26");
    let watch = watch(&c);

    let mut ids = c.running_pings("pod-a", "pod-b", 10, 3);
    ids.extend(c.running_pings("pod-b", "pod-a", 10, 3));
    c.dispatcher.as_mut().unwrap().sigkill();
    // The pings finish (2 s) and their results land in the stream while nobody ingests them.
    wait_results(&watch, &ids, Duration::from_secs(15));
    c.start_dispatcher();
    for id in &ids {
        let job = c.wait_job(id, None, Duration::from_secs(15));
        assert_eq!(job["state"], "succeeded", "{job}\n{}", c.logs());
        assert_eq!(job["result"]["received"], 10);
    }
}

#[test]
fn no_result_is_lost_while_redis_is_down() {
    let mut c = Cluster::two_workers("127.0.0.27", "127.0.0.28");
    let watch = watch(&c);

    let ids = c.running_pings("pod-a", "pod-b", 10, 4);
    c.redis.stop();
    let out = c.podperf(&["jobs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("store_unavailable"),
        "{}",
        stderr(&out)
    );
    wait_results(&watch, &ids, Duration::from_secs(15)); // the pings end during the outage
    c.redis.restart();
    for id in &ids {
        let job = c.wait_job(id, None, Duration::from_secs(20));
        assert_eq!(job["state"], "succeeded", "{job}\n{}", c.logs());
    }
}

#[test]
fn everything_reconnects_by_itself_when_nats_restarts_mid_batch() {
    let mut c = Cluster::two_workers("127.0.0.36", "127.0.0.37");

    let ids = c.running_pings("pod-a", "pod-b", 15, 3);
    let down = Instant::now();
    c.nats[0].restart(); // same port, JetStream file store kept
    for id in &ids {
        let job = c.wait_job(id, None, Duration::from_secs(30));
        assert_eq!(job["state"], "succeeded", "{job}\n{}", c.logs());
    }
    c.wait_for_workers(&["pod-a", "pod-b"]);
    let (out, job) = c.json(&[
        "run", "ping", "--from", "pod-a", "--to", "pod-b", "--count", "2",
    ]);
    assert!(out.status.success(), "{job}\n{}", c.logs());
    eprintln!("recovered {:?} after the restart began", down.elapsed());
}

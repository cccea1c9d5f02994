//! Issue 13's store sizing: the bytes one finished job takes in Redis and in the results stream,
//! per kind, measured with real jobs on loopback workers (a measurement, so `#[ignore]`d: run it
//! with `--ignored`). For each kind it submits N jobs with the parameters a user gets by default,
//! waits until all are `succeeded` and ingested, and reads what they added: `MEMORY USAGE` of
//! each job's hash and of the job indexes (the exact bytes Redis gives them), Redis `INFO memory`
//! `used_memory` (noisier: allocator and buffers), and the results stream's bytes and messages. Recorded in `BENCHMARKS.md`.
//!
//! ```sh
//! cargo test -p podperf-cli --test faults sizing -- --ignored --nocapture
//! ```

use std::time::Duration;

use podperf_protocol::job::JobSpec;
use podperf_protocol::names::RESULTS_STREAM;
use podperf_protocol::outcome::JobState;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{spec, DispatcherOpts, Sys};

/// `(pod, node, ip)`: two pods on each of two nodes.
const WORKERS: [(&str, &str, &str); 4] = [
    ("pod-a", "node-1", "127.0.0.151"),
    ("pod-b", "node-2", "127.0.0.152"),
    ("pod-c", "node-1", "127.0.0.153"),
    ("pod-d", "node-2", "127.0.0.154"),
];

/// What the stores hold at one moment.
#[derive(Debug, Clone, Copy)]
struct Use {
    redis_used_memory: u64,
    /// `MEMORY USAGE` of the job indexes (`podperf:jobs*`: every job, by state, by worker).
    redis_indexes: u64,
    stream_bytes: u64,
    stream_messages: u64,
}

async fn redis_conn(sys: &Sys) -> redis::aio::MultiplexedConnection {
    redis::Client::open(sys.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

async fn measure(sys: &Sys) -> Use {
    let mut conn = redis_conn(sys).await;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await
        .expect("INFO memory");
    let redis_used_memory = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO memory");
    let indexes: Vec<String> = redis::cmd("KEYS")
        .arg("podperf:jobs*")
        .query_async(&mut conn)
        .await
        .expect("KEYS podperf:jobs*");
    let mut redis_indexes = 0;
    for key in indexes {
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut conn)
            .await
            .expect("MEMORY USAGE");
        redis_indexes += bytes.unwrap_or(0);
    }
    let js = async_nats::jetstream::new(sys.nats_client().clone());
    let mut stream = js.get_stream(RESULTS_STREAM).await.expect("results stream");
    let state = stream.info().await.expect("stream info").state.clone();
    Use {
        redis_used_memory,
        redis_indexes,
        stream_bytes: state.bytes,
        stream_messages: state.messages,
    }
}

/// The mean `MEMORY USAGE` (all fields counted) of the jobs' hashes.
async fn hash_bytes(sys: &Sys, ids: &[Uuid]) -> u64 {
    let mut conn = redis_conn(sys).await;
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("MEMORY")
            .arg("USAGE")
            .arg(format!("podperf:job:{id}"))
            .arg("SAMPLES")
            .arg(0);
    }
    let sizes: Vec<Option<u64>> = pipe.query_async(&mut conn).await.expect("MEMORY USAGE");
    let sizes: Vec<u64> = sizes
        .into_iter()
        .map(|s| s.expect("every job has its hash"))
        .collect();
    sizes.iter().sum::<u64>() / sizes.len() as u64
}

/// One kind: its name, how many jobs, the spec of job `i`.
struct Kind {
    name: &'static str,
    n: usize,
    spec: fn(usize) -> JobSpec,
}

/// A source and a target on another node, alternating between the two pairs.
fn pair(i: usize) -> (&'static str, &'static str) {
    [("pod-a", "pod-b"), ("pod-d", "pod-c")][i % 2]
}

/// A job toward a worker; a long timeout, as a node runs one bandwidth or latency job at a time
/// and these wait their turn.
fn to_worker(i: usize, params: serde_json::Value) -> JobSpec {
    let (src, dst) = pair(i);
    spec(json!({"source": src, "target": {"worker": dst}, "params": params, "timeout_s": 300}))
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            name: "noop",
            n: 500,
            spec: |i| spec(json!({"source": pair(i).0, "params": {"kind": "noop"}})),
        },
        Kind {
            name: "ping",
            n: 100,
            spec: |i| to_worker(i, json!({"kind": "ping"})),
        },
        Kind {
            name: "traceroute",
            n: 40,
            spec: |i| to_worker(i, json!({"kind": "traceroute"})),
        },
        Kind {
            name: "mtu",
            n: 40,
            spec: |i| to_worker(i, json!({"kind": "mtu"})),
        },
        Kind {
            name: "sweep",
            n: 40,
            spec: |i| spec(json!({"source": pair(i).0, "params": {"kind": "sweep"}})),
        },
        Kind {
            name: "latency",
            n: 6,
            spec: |i| to_worker(i, json!({"kind": "latency"})),
        },
        Kind {
            name: "iperf3",
            n: 4,
            spec: |i| to_worker(i, json!({"kind": "iperf3"})),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement (≈ 3 min): run with --ignored"]
async fn sizing_bytes_per_job_in_each_store_per_kind() {
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    for (pod, node, ip) in WORKERS {
        sys.add_worker(pod, node, ip, 64);
    }
    let pods: Vec<&str> = WORKERS.iter().map(|w| w.0).collect();
    sys.wait_workers(&pods, Duration::from_secs(20)).await;
    let mut rows = Vec::new();
    for kind in kinds() {
        let before = measure(&sys).await;
        let jobs: Vec<JobSpec> = (0..kind.n).map(kind.spec).collect();
        let ids = sys.submit_ok(jobs).await;
        sys.wait_terminal(&ids, Duration::from_secs(300)).await;
        sys.wait_ingested(Duration::from_secs(30)).await;
        for id in &ids {
            let rec = sys.get(*id).await.expect("the job's record");
            assert_eq!(
                rec.state,
                JobState::Succeeded,
                "{} job not succeeded: {rec:?}",
                kind.name
            );
        }
        let after = measure(&sys).await;
        let n = ids.len() as u64;
        let redis = after
            .redis_used_memory
            .saturating_sub(before.redis_used_memory)
            / n;
        let hash = hash_bytes(&sys, &ids).await;
        let indexes = after.redis_indexes.saturating_sub(before.redis_indexes) / n;
        let stream = (after.stream_bytes - before.stream_bytes) / n;
        let messages = (after.stream_messages - before.stream_messages) as f64 / n as f64;
        assert!(hash > 0 && stream > 0, "{}: nothing stored?", kind.name);
        println!(
            "FIGURES sizing {}: {n} jobs; Redis {} bytes/job (its hash {hash} + index entries \
             {indexes}; used_memory +{redis}); results stream +{stream} bytes/job in \
             {messages:.2} messages/job",
            kind.name,
            hash + indexes
        );
        rows.push((kind.name, n, hash, indexes, redis, stream, messages));
    }
    println!(
        "| kind | jobs | Redis per job (hash + index entries) | used_memory delta per job | \
         results stream per job | messages per job |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, n, hash, indexes, redis, stream, messages) in rows {
        println!(
            "| {name} | {n} | {} B ({hash} + {indexes}) | {redis} B | {stream} B | {messages:.2} |",
            hash + indexes
        );
    }
}

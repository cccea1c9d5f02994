//! Schedules through the real system: `podperf schedule …` against the real dispatcher (its
//! minimum period lowered to 1 s with `PODPERF_SCHEDULE_MIN_EVERY_MS`), real workers on loopback
//! addresses with real fping and iperf3, real nats-server and redis-server.
//!
//! What is checked: a schedule starts on time within its jitter; a run slower than the period
//! makes the next one slip (never two runs of one schedule at once); pause, resume and rm; a
//! dispatcher restart (two replicas, only the leader starts runs) and a NATS restart lose no
//! schedule and double no run; bad input is refused by the CLI (exit 64) and by the NATS API
//! (typed errors). Every wait is bounded.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use podperf_protocol::api::ErrorCode;
use podperf_protocol::schedule::endpoint;
use podperf_testkit::{
    call_raw_reply, eventually, workspace_bin, Cluster, ClusterOpts, WorkerSpec,
};
use serde_json::Value;

/// How late after its drawn start a run may begin: the runner wakes at the start time, then
/// plans and stores the run (a few ms; generous for a busy 2-core machine).
const START_SLACK_MS: u64 = 1500;
const WITHIN: Duration = Duration::from_secs(30);

async fn cluster(workers: &[(&str, &str, &str)]) -> Cluster {
    let opts = ClusterOpts {
        dispatcher_env: vec![("PODPERF_SCHEDULE_MIN_EVERY_MS".into(), "1000".into())],
        ..ClusterOpts::default()
    };
    let mut c = Cluster::start(opts).await;
    for (pod, node, ip) in workers {
        c.add_worker(WorkerSpec::new(pod, node, ip));
    }
    let pods: Vec<&str> = workers.iter().map(|w| w.0).collect();
    c.wait_workers(&pods, WITHIN).await;
    c
}

fn podperf(c: &Cluster, args: &[&str]) -> Output {
    Command::new(workspace_bin("podperf"))
        .args(args)
        .env("PODPERF_NATS_URL", c.nats_url())
        .output()
        .expect("run podperf")
}

/// `podperf -o json ARGS`, which must succeed; its JSON.
fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = podperf(c, &all);
    assert!(
        out.status.success(),
        "podperf {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn schedule(c: &Cluster, name: &str) -> Option<Value> {
    let list = json(c, &["schedule", "list"]);
    list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

/// The runs tagged with `name`, by creation time.
async fn tagged_runs(c: &Cluster, name: &str) -> Vec<Value> {
    let req = podperf_protocol::run::ListRunsRequest { limit: Some(200) };
    let Ok(reply) = c.client().runs(&req).await else {
        return vec![];
    };
    let mut runs: Vec<Value> = reply
        .runs
        .into_iter()
        .filter(|r| r.schedule.as_deref() == Some(name))
        .map(|r| serde_json::to_value(r).unwrap())
        .collect();
    runs.sort_by_key(|r| r["created_at_ms"].as_u64());
    runs
}

/// Waits until `name` has at least `n` finished runs; returns them all.
async fn finished_runs(c: &Cluster, name: &str, n: usize, within: Duration) -> Vec<Value> {
    let what = format!("{n} runs of {name} finish");
    eventually(within, &what, || async {
        let runs = tagged_runs(c, name).await;
        let done = runs.iter().filter(|r| r["finished"] == true).count();
        (done >= n).then_some(runs)
    })
    .await
}

/// When a run's last job ended (from its jobs' records).
async fn run_end_ms(c: &Cluster, run_id: &str) -> u64 {
    let report = c.client().run(run_id.parse().unwrap()).await.unwrap();
    let mut end = 0;
    for p in &report.pairs {
        for id in &p.job_ids {
            let job = c.client().get(*id).await.unwrap();
            end = end.max(job.finished_at_ms.expect("a finished run's job ended"));
        }
    }
    end
}

/// No two runs of a schedule overlap: each starts after the previous one's last job ended.
async fn assert_no_overlap(c: &Cluster, runs: &[Value]) {
    let finished: Vec<&Value> = runs.iter().filter(|r| r["finished"] == true).collect();
    for pair in finished.windows(2) {
        let end = run_end_ms(c, pair[0]["run_id"].as_str().unwrap()).await;
        let next = pair[1]["created_at_ms"].as_u64().unwrap();
        assert!(
            end <= next,
            "run {} ended at {end}, after run {} started at {next}",
            pair[0]["run_id"],
            pair[1]["run_id"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_schedule_runs_on_time_within_its_jitter_and_can_be_paused_resumed_removed() {
    let c = cluster(&[
        ("pod-a", "node-1", "127.0.0.81"),
        ("pod-b", "node-2", "127.0.0.82"),
    ])
    .await;
    let every_ms = 2000;
    let added = json(
        &c,
        &[
            "schedule",
            "add",
            "mesh",
            "--every",
            "2s",
            "--jitter",
            "0.5",
            "sweep",
            "--count",
            "1",
            "--interval-ms",
            "20",
        ],
    );
    assert_eq!(added["name"], "mesh");
    assert_eq!(added["every_ms"], every_ms);
    assert_eq!(added["run"]["sweep"]["count"], 1);

    // Three runs, each seen through the schedule's last run: started within its jitter window.
    let mut seen: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    eventually(WITHIN, "three scheduled runs start", || {
        let s = schedule(&c, "mesh").expect("listed");
        if let Some(id) = s["last_run"]["run_id"].as_str() {
            let due = s["last_run"]["due_at_ms"].as_u64().unwrap();
            let started = s["last_run"]["started_at_ms"].as_u64().unwrap();
            seen.insert(id.to_string(), (due, started));
        }
        std::future::ready((seen.len() >= 3).then_some(()))
    })
    .await;
    let window = every_ms / 2;
    for (id, (due, started)) in &seen {
        assert!(
            *started >= *due && *started <= due + window + START_SLACK_MS,
            "run {id} due at {due} started at {started}: outside [due, due + {window} ms]"
        );
    }
    // Consecutive runs are due one period apart (none was late enough to slip).
    let dues: Vec<u64> = seen
        .values()
        .map(|v| v.0)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for w in dues.windows(2) {
        assert_eq!((w[1] - w[0]) % every_ms, 0, "dues on the grid: {dues:?}");
    }

    // Every run is an ordinary run, tagged, listed by `podperf runs`, and it succeeded.
    let runs = finished_runs(&c, "mesh", 3, WITHIN).await;
    for r in runs.iter().filter(|r| r["finished"] == true) {
        assert_eq!(r["jobs"], 2, "one sweep per worker: {r}");
        assert_eq!(r["jobs_succeeded"], 2, "{r}\n{}", c.logs());
    }
    let table = podperf(&c, &["runs"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("mesh"));
    let report = c
        .client()
        .run(runs[0]["run_id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let pair = &report.pairs[0];
    assert!(
        pair.figures.rtt_avg_ms.is_some(),
        "the sweep's RTT: {pair:?}"
    );
    assert_no_overlap(&c, &runs).await;

    // Paused: no run starts for two periods and more; the table says so.
    let paused = json(&c, &["schedule", "pause", "mesh"]);
    assert_eq!(paused["paused"], true);
    let idle = eventually(WITHIN, "the run in progress ends", || {
        let s = schedule(&c, "mesh").unwrap();
        std::future::ready((s["status"] == "paused").then_some(s))
    })
    .await;
    let text = String::from_utf8_lossy(&podperf(&c, &["schedule", "list"]).stdout).into_owned();
    assert!(
        text.contains("paused") && text.contains("sweep --count 1"),
        "{text}"
    );
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(2 * every_ms + 1000);
    while tokio::time::Instant::now() < quiet_until {
        let s = schedule(&c, "mesh").unwrap();
        assert_eq!(
            s["runs"], idle["runs"],
            "a paused schedule started a run: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Resumed: runs again.
    let resumed = json(&c, &["schedule", "resume", "mesh"]);
    assert_eq!(resumed["paused"], false);
    let before = idle["runs"].as_u64().unwrap();
    eventually(WITHIN, "a run after resume", || {
        let s = schedule(&c, "mesh").unwrap();
        std::future::ready((s["runs"].as_u64().unwrap() > before).then_some(()))
    })
    .await;

    // Removed: gone from the list; removing it again is refused.
    let removed = json(&c, &["schedule", "rm", "mesh"]);
    assert_eq!(removed["name"], "mesh");
    assert!(schedule(&c, "mesh").is_none());
    let again = podperf(&c, &["schedule", "rm", "mesh"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matrix_slower_than_its_period_slips_instead_of_overlapping() {
    let c = cluster(&[
        ("pod-a", "node-1", "127.0.0.83"),
        ("pod-b", "node-2", "127.0.0.84"),
    ])
    .await;
    // Each run takes ≥ 2 s of iperf3 (plus a ping): longer than its 1 s period.
    json(
        &c,
        &[
            "schedule",
            "add",
            "slow",
            "--every",
            "1s",
            "matrix",
            "--samples",
            "1",
            "--count",
            "2",
            "--duration",
            "2",
            "--no-latency",
            "--no-mtu",
            "--no-traceroute",
        ],
    );
    let runs = finished_runs(&c, "slow", 3, Duration::from_secs(60)).await;
    json(&c, &["schedule", "rm", "slow"]);
    assert_no_overlap(&c, &runs).await;
    for r in runs.iter().filter(|r| r["finished"] == true) {
        assert_eq!(r["jobs"], r["jobs_succeeded"], "{r}\n{}", c.logs());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_survive_a_dispatcher_and_a_nats_restart_without_doubled_runs_with_two_replicas()
{
    let mut c = cluster(&[
        ("pod-a", "node-1", "127.0.0.85"),
        ("pod-b", "node-2", "127.0.0.86"),
    ])
    .await;
    // A second replica: only the leader starts runs (the other serves the API).
    c.add_dispatcher("dispatcher-2");
    json(
        &c,
        &[
            "schedule",
            "add",
            "keep",
            "--every",
            "2s",
            "sweep",
            "--count",
            "1",
            "--interval-ms",
            "20",
        ],
    );
    finished_runs(&c, "keep", 1, WITHIN).await;

    // The first dispatcher is killed (the other replica leads, if it did not already) and
    // started again: the schedule goes on.
    c.dispatcher.as_mut().unwrap().sigkill();
    c.start_dispatcher().await;
    let n = tagged_runs(&c, "keep").await.len();
    finished_runs(&c, "keep", n + 1, WITHIN).await;

    // NATS restarts (its file store kept): the schedule is still there and still runs.
    c.nats[0].restart();
    c.wait_api().await;
    eventually(WITHIN, "the schedule is listed again", || {
        let out = podperf(&c, &["-o", "json", "schedule", "list"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        std::future::ready(
            v["schedules"]
                .as_array()
                .filter(|s| s.len() == 1)
                .map(|_| ()),
        )
    })
    .await;
    let n = tagged_runs(&c, "keep").await.len();
    let runs = finished_runs(&c, "keep", n + 1, WITHIN).await;

    // None doubled: the runs do not overlap and each claimed run is one run.
    let s = schedule(&c, "keep").unwrap();
    json(&c, &["schedule", "rm", "keep"]);
    assert_no_overlap(&c, &runs).await;
    let claimed = s["runs"].as_u64().unwrap();
    let listed = tagged_runs(&c, "keep").await.len() as u64;
    assert!(
        listed <= claimed,
        "{listed} runs listed, {claimed} claimed: {s}"
    );
    assert!(
        claimed - listed <= 1,
        "at most the claim cut by the kill is missing: {s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_refused_by_the_cli_and_the_api() {
    let c = cluster(&[]).await;
    let usage = [
        vec!["schedule", "add", "x", "--every", "500ms", "sweep"],
        vec!["schedule", "add", "x", "--every", "8days", "sweep"],
        vec!["schedule", "add", "x", "--every", "soon", "sweep"],
        vec![
            "schedule", "add", "x", "--every", "10s", "--jitter", "0.6", "sweep",
        ],
        vec![
            "schedule",
            "add",
            "x",
            "--every",
            "10s",
            "--until",
            "2000-01-01T00:00:00Z",
            "sweep",
        ],
        vec!["schedule", "add", "x", "--every", "10s"],
        vec![
            "schedule",
            "add",
            "x",
            "--every",
            "10s",
            "matrix",
            "--no-wait",
        ],
        vec![
            "schedule", "add", "x", "--every", "10s", "sweep", "--count", "x",
        ],
        // The matrix flags' own bounds (as `podperf matrix` checks them).
        vec![
            "schedule",
            "add",
            "x",
            "--every",
            "10s",
            "matrix",
            "--samples",
            "0",
        ],
    ];
    for args in usage {
        let out = podperf(&c, &args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
    }
    // Refused by the dispatcher: exit 1 with the code and the field.
    let refused = [
        (
            vec!["schedule", "add", "a.b", "--every", "10s", "sweep"],
            "(name)",
        ),
        (
            vec![
                "schedule", "add", "x", "--every", "10s", "sweep", "--count", "0",
            ],
            "(run.sweep.count)",
        ),
        (vec!["schedule", "pause", "nothing"], "not_found"),
    ];
    for (args, want) in refused {
        let out = podperf(&c, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    json(&c, &["schedule", "add", "x", "--every", "10s", "sweep"]);
    let dup = podperf(&c, &["schedule", "add", "x", "--every", "10s", "sweep"]);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists"));

    // The NATS API: malformed, unknown fields, out of bounds.
    let api = c.client();
    let cases: [(&str, &str, ErrorCode, Option<&str>); 5] = [
        (endpoint::SCHEDULES_ADD, "{", ErrorCode::BadRequest, None),
        (
            endpoint::SCHEDULES_ADD,
            r#"{"name":"y","every_ms":10000,"run":{"sweep":{}},"extra":1}"#,
            ErrorCode::BadRequest,
            None,
        ),
        (
            endpoint::SCHEDULES_ADD,
            r#"{"name":"y","every_ms":999,"run":{"sweep":{}}}"#,
            ErrorCode::InvalidParam,
            Some("every_ms"),
        ),
        (
            endpoint::SCHEDULES_ADD,
            r#"{"name":"y","every_ms":10000,"jitter":0.7,"run":{"sweep":{}}}"#,
            ErrorCode::InvalidParam,
            Some("jitter"),
        ),
        (
            endpoint::SCHEDULES_RM,
            r#"{"name":"no such"}"#,
            ErrorCode::InvalidParam,
            Some("name"),
        ),
    ];
    for (ep, body, code, field) in cases {
        let err = call_raw_reply(api, ep, body.to_string()).await.unwrap_err();
        let e = err
            .api_error()
            .unwrap_or_else(|| panic!("{ep} {body}: {err}"));
        assert_eq!(
            (e.code, e.field.as_deref()),
            (code, field),
            "{ep} {body}: {e}"
        );
    }
    // Nothing bad was stored.
    let names: Vec<String> = api
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["x"]);
}

//! Inputs for the decoders: any JSON, hostile strings, and near-valid messages (valid examples of
//! each wire type with one field replaced, removed or added).

use podperf_protocol::api::{
    ApiReply, JobIdRequest, JobRecord, ListJobsReply, ListJobsRequest, ListWorkersReply,
    SubmitReply, SubmitRequest,
};
use podperf_protocol::command::{JobAssignment, WorkerCommand, WorkerReply};
use podperf_protocol::job::JobSpec;
use podperf_protocol::outcome::{JobEvent, JobOutcome};
use podperf_protocol::result::ProbeResult;
use podperf_protocol::run::{ListRunsRequest, MatrixRequest, RunIdRequest, RunRecord, RunReport};
use podperf_protocol::worker::{WorkerInfo, WorkerView};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Tries to decode `bytes` as every message that crosses the wire; a panic fails the property.
/// Returns how many decoded (for the curious; the property is "no panic").
pub fn decode_all(bytes: &[u8]) -> usize {
    fn ok<T: serde::de::DeserializeOwned>(b: &[u8]) -> usize {
        usize::from(serde_json::from_slice::<T>(b).is_ok())
    }
    let mut n = 0;
    n += ok::<WorkerCommand>(bytes);
    n += ok::<WorkerReply>(bytes);
    n += ok::<JobAssignment>(bytes);
    n += ok::<JobSpec>(bytes);
    n += ok::<SubmitRequest>(bytes);
    n += ok::<JobIdRequest>(bytes);
    n += ok::<ListJobsRequest>(bytes);
    n += ok::<ApiReply<SubmitReply>>(bytes);
    n += ok::<ApiReply<JobRecord>>(bytes);
    n += ok::<ApiReply<ListJobsReply>>(bytes);
    n += ok::<ApiReply<ListWorkersReply>>(bytes);
    n += ok::<JobOutcome>(bytes);
    n += ok::<JobEvent>(bytes);
    n += ok::<ProbeResult>(bytes);
    n += ok::<WorkerInfo>(bytes);
    n += ok::<WorkerView>(bytes);
    n += ok::<MatrixRequest>(bytes);
    n += ok::<RunIdRequest>(bytes);
    n += ok::<ListRunsRequest>(bytes);
    n += ok::<RunRecord>(bytes);
    n += ok::<RunReport>(bytes);
    // What decoded must also validate without panicking.
    if let Ok(spec) = serde_json::from_slice::<JobSpec>(bytes) {
        let _ = spec.validate();
        let _ = spec.params.nominal_duration();
    }
    if let Ok(req) = serde_json::from_slice::<SubmitRequest>(bytes) {
        for spec in &req.jobs {
            let _ = spec.validate();
        }
    }
    if let Ok(WorkerCommand::Run(job)) = serde_json::from_slice::<WorkerCommand>(bytes) {
        let _ = job.validate();
    }
    n
}

/// Any JSON value, nested a few levels.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN/inf", |f| f.is_finite())
            .prop_map(Value::from),
        nasty_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Keys the wire types use (so that random objects reach deep into the decoders), and others.
pub fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "kind",
            "command",
            "reply",
            "job_id",
            "params",
            "target",
            "source",
            "worker",
            "address",
            "ip",
            "port",
            "worker_id",
            "deadline_at_ms",
            "count",
            "interval_ms",
            "size_bytes",
            "max_hops",
            "protocol",
            "duration_s",
            "parallel",
            "bitrate_bps",
            "reverse",
            "sleep_ms",
            "timeout_s",
            "jobs",
            "ok",
            "error",
            "code",
            "message",
            "field",
            "status",
            "reason",
            "result",
            "raw_output",
            "started_at_ms",
            "finished_at_ms",
            "state",
            "limit",
            "since_ms",
            "run_id",
            "samples",
            "hops",
            "probes",
            "replies",
        ])
        .prop_map(String::from),
        "[a-z_]{1,12}",
    ]
}

/// Strings an attacker or a confused client might send: shell metacharacters, option-like
/// strings, control characters, Unicode, very long ones.
pub fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "-f",
            "--logfile=/etc/passwd",
            "; rm -rf /",
            "$(reboot)",
            "`id`",
            "a|b",
            "a && b",
            "../../etc/passwd",
            "ping",
            "noop",
            "iperf3",
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1/8",
            "*",
            ">",
            "a.b",
            "podperf.jobs.>",
            "\u{0}",
            "\n",
            "NaN",
            "-1",
            "1e309",
            "18446744073709551616",
            "\u{202e}evil",
        ])
        .prop_map(String::from),
        ".{0,40}",
        "[ -~]{0,20}",
        (0usize..3).prop_map(|n| "x".repeat(100 + n * 100)),
    ]
}

/// Near-valid messages: valid examples of each type with one field replaced, removed or added.
pub fn valid_examples() -> Vec<Value> {
    let id = "01970000-0000-7000-8000-000000000001";
    vec![
        json!({"jobs": [{"source": "w1", "params": {"kind": "noop", "sleep_ms": 5}}]}),
        json!({"source": "w1", "target": {"worker": "w2"}, "params": {"kind": "ping",
               "count": 3, "interval_ms": 200, "size_bytes": 56}, "timeout_s": 10}),
        json!({"source": "w1", "target": {"address": "10.0.0.1"}, "params": {"kind": "iperf3",
               "duration_s": 1, "parallel": 2, "protocol": "udp", "bitrate_bps": 1000,
               "reverse": true}}),
        json!({"source": "w1", "target": {"worker": "w2"}, "params": {"kind": "traceroute",
               "max_hops": 5, "protocol": "tcp"}}),
        json!({"command": "run", "job_id": id, "params": {"kind": "ping", "count": 2},
               "target": {"ip": "127.0.0.1", "port": 5201, "worker_id": "w2"},
               "deadline_at_ms": 1_900_000_000_000u64}),
        json!({"command": "cancel", "job_id": id}),
        json!({"reply": "refused", "job_id": id, "reason": "at_capacity", "message": "x"}),
        json!({"job_id": id, "worker_id": "w1", "status": "failed", "reason": "unreachable",
               "message": "m", "result": {"kind": "noop", "slept_ms": 1},
               "started_at_ms": 1, "finished_at_ms": 2}),
        json!({"job_id": id, "worker_id": "w1", "event": "started", "at_ms": 5}),
        json!({"state": "succeeded", "worker": "w1", "since_ms": 0, "limit": 10}),
        json!({"job_id": id}),
        json!({"error": {"code": "busy", "message": "m", "field": "jobs"}}),
        json!({"worker_id": "w", "pod_name": "p", "pod_ip": "127.0.0.1", "node_name": "n",
               "host_network": false, "tools": [{"tool": "ping", "available": true}],
               "iperf3_port": 5201, "max_concurrent_jobs": 8, "started_at_ms": 1,
               "version": "0", "last_seen_at_ms": 2}),
        json!({"kind": "traceroute", "target": "10.0.0.9", "max_hops": 3, "reached": true,
               "hops": [{"ttl": 1, "probes": [{"address": "10.0.0.9", "rtt_ms": 0.1}]}]}),
    ]
}

#[derive(Debug, Clone)]
pub enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Add(String, Value),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
        (field_name(), any_json()).prop_map(|(k, v)| Mutation::Add(k, v)),
    ]
}

/// Applies `m` to one object reachable in `v` (depth-first, chosen by index).
pub fn mutate(v: &mut Value, m: &Mutation) {
    // The objects in `v`, as key paths (`#i` steps into an array).
    fn paths(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(map) => {
                out.push(prefix.clone());
                for (k, child) in map {
                    let mut p = prefix.clone();
                    p.push(k.clone());
                    paths(child, p, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let mut p = prefix.clone();
                    p.push(format!("#{i}"));
                    paths(child, p, out);
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(v, Vec::new(), &mut all);
    let pick = match m {
        Mutation::Replace(i, _) | Mutation::Remove(i) => *i,
        Mutation::Add(k, _) => k.len(),
    };
    let path = &all[pick % all.len()];
    let mut cur = v;
    for step in path {
        cur = match step.strip_prefix('#') {
            Some(i) => &mut cur[i.parse::<usize>().unwrap()],
            None => &mut cur[step.as_str()],
        };
    }
    let Value::Object(map) = cur else { return };
    let keys: Vec<String> = map.keys().cloned().collect();
    match m {
        Mutation::Replace(i, new) if !keys.is_empty() => {
            map.insert(keys[i % keys.len()].clone(), new.clone());
        }
        Mutation::Remove(i) if !keys.is_empty() => {
            map.remove(&keys[i % keys.len()]);
        }
        Mutation::Add(k, new) => {
            map.insert(k.clone(), new.clone());
        }
        _ => {}
    }
}

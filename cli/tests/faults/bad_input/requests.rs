//! Hostile or broken API requests: refused with a typed error naming the field; nothing stored, dispatched or executed.

use super::*;

/// (label, request body, expected code, expected field — `None` when none is expected).
fn refused_batches() -> Vec<(&'static str, Vec<u8>, ErrorCode, Option<&'static str>)> {
    let w = |n: &str| json!({"worker": n});
    let body = |jobs: Vec<Value>| serde_json::to_vec(&json!({ "jobs": jobs })).unwrap();
    let ping = |p: Value| job("pod-a", w("pod-b"), p);
    let mut cases = vec![
        (
            "not JSON",
            b"ping -f 10.0.0.1".to_vec(),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "truncated JSON",
            br#"{"jobs": [{"source": "pod-a""#.to_vec(),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "jobs is a string",
            br#"{"jobs": "-f"}"#.to_vec(),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "unknown top-level field",
            br#"{"jobs": [], "exec": "id"}"#.to_vec(),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "empty batch",
            body(vec![]),
            ErrorCode::InvalidParam,
            Some("jobs"),
        ),
        (
            "source is a number",
            body(vec![json!({"source": 5, "params": {"kind": "noop"}})]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "unknown kind",
            body(vec![job("pod-a", w("pod-b"), json!({"kind": "shell"}))]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "params is a string",
            body(vec![job("pod-a", w("pod-b"), json!("-f"))]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "extra flag field",
            body(vec![ping(json!({"kind": "ping", "flags": "-f"}))]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "count is a string",
            body(vec![ping(json!({"kind": "ping", "count": "5; rm -rf /"}))]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "negative count",
            body(vec![ping(json!({"kind": "ping", "count": -1}))]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "count 1e20",
            body(vec![ping(json!({"kind": "ping", "count": 1e20}))]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "address is a command",
            body(vec![job(
                "pod-a",
                json!({"address": "127.0.0.1; rm -rf /"}),
                json!({"kind": "ping"}),
            )]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "address is an option",
            body(vec![job(
                "pod-a",
                json!({"address": "--logfile=/etc/passwd"}),
                json!({"kind": "ping"}),
            )]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "count out of range",
            body(vec![ping(json!({"kind": "ping", "count": 5000}))]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.count"),
        ),
        (
            "count zero",
            body(vec![ping(json!({"kind": "ping", "count": 0}))]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.count"),
        ),
        (
            "interval too short (flood)",
            body(vec![ping(json!({"kind": "ping", "interval_ms": 1}))]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.interval_ms"),
        ),
        (
            "packet too big",
            body(vec![ping(json!({"kind": "ping", "size_bytes": 70000}))]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.size_bytes"),
        ),
        (
            "too many hops",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "traceroute", "max_hops": 65}),
            )]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.max_hops"),
        ),
        (
            "iperf3 too long",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "iperf3", "duration_s": 61}),
            )]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.duration_s"),
        ),
        (
            "iperf3 no streams",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "iperf3", "parallel": 0}),
            )]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.parallel"),
        ),
        (
            "TCP with a bitrate",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "iperf3", "bitrate_bps": 1000}),
            )]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.bitrate_bps"),
        ),
        (
            "latency too long",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "latency", "duration_s": 61}),
            )]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.duration_s"),
        ),
        (
            "latency message below sockperf's header",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "latency", "message_size_bytes": 13}),
            )]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.message_size_bytes"),
        ),
        (
            "latency with an extra flag field",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "latency", "flags": "--mps=max"}),
            )]),
            ErrorCode::BadRequest,
            None,
        ),
        (
            "mtu with too many hops",
            body(vec![job(
                "pod-a",
                w("pod-b"),
                json!({"kind": "mtu", "max_hops": 65}),
            )]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.max_hops"),
        ),
        (
            "noop sleeps too long",
            body(vec![noop_with("pod-a", 600_001)]),
            ErrorCode::InvalidParam,
            Some("jobs[0].params.sleep_ms"),
        ),
        (
            "timeout zero",
            body(vec![
                json!({"source": "pod-a", "params": {"kind": "noop"}, "timeout_s": 0}),
            ]),
            ErrorCode::InvalidParam,
            Some("jobs[0].timeout_s"),
        ),
        (
            "ping without a target",
            body(vec![json!({"source": "pod-a", "params": {"kind": "ping"}})]),
            ErrorCode::InvalidParam,
            Some("jobs[0].target"),
        ),
        (
            "empty source",
            body(vec![noop_with("", 0)]),
            ErrorCode::InvalidParam,
            Some("jobs[0].source"),
        ),
        (
            "unknown worker",
            body(vec![noop_with("nope", 0)]),
            ErrorCode::UnknownWorker,
            Some("jobs[0].source"),
        ),
        (
            "offline worker",
            body(
                vec![ping(json!({"kind": "ping"}))]
                    .into_iter()
                    .map(|mut j| {
                        j["target"] = w("pod-gone");
                        j
                    })
                    .collect(),
            ),
            ErrorCode::WorkerOffline,
            Some("jobs[0].target.worker"),
        ),
        (
            "address outside the allow-list",
            body(vec![job(
                "pod-a",
                json!({"address": "192.0.2.7"}),
                json!({"kind": "ping"}),
            )]),
            ErrorCode::AddressNotAllowed,
            Some("jobs[0].target.address"),
        ),
        (
            "IPv6 outside the allow-list",
            body(vec![job(
                "pod-a",
                json!({"address": "::1"}),
                json!({"kind": "ping"}),
            )]),
            ErrorCode::AddressNotAllowed,
            Some("jobs[0].target.address"),
        ),
        (
            "one bad job refuses the whole batch",
            body(vec![
                noop_with("pod-a", 0),
                noop_with("pod-a", 0),
                noop_with("pod-a", 0),
                noop_with("nope", 0),
                noop_with("pod-a", 0),
            ]),
            ErrorCode::UnknownWorker,
            Some("jobs[3].source"),
        ),
        (
            "batch over 10,000",
            body((0..10_001).map(|_| noop_with("pod-a", 0)).collect()),
            ErrorCode::InvalidParam,
            Some("jobs"),
        ),
    ];
    for name in [
        "-f",
        "--logfile=/etc/passwd",
        "; rm -rf /",
        "$(reboot)",
        "`id`",
        "pod-a -f",
        "pod-a\n-f",
        "*",
        ">",
        "podperf.jobs.>",
    ] {
        cases.push((
            "hostile source name",
            body(vec![noop_with(name, 0)]),
            ErrorCode::UnknownWorker,
            Some("jobs[0].source"),
        ));
        cases.push((
            "hostile target name",
            body(vec![job("pod-a", w(name), json!({"kind": "ping"}))]),
            ErrorCode::UnknownWorker,
            Some("jobs[0].target.worker"),
        ));
    }
    cases
}

fn noop_with(source: &str, sleep_ms: u64) -> Value {
    json!({"source": source, "params": {"kind": "noop", "sleep_ms": sleep_ms}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_typed_errors_naming_the_field_and_nothing_runs() {
    let mut sys = Sys::start(DispatcherOpts::default()).await;
    sys.add_worker("pod-a", "node-1", "127.0.0.121", 8);
    sys.add_worker("pod-b", "node-2", "127.0.0.122", 8);
    sys.add_worker("pod-gone", "node-2", "127.0.0.123", 8);
    sys.wait_workers(&["pod-a", "pod-b", "pod-gone"], Duration::from_secs(15))
        .await;
    sys.workers[2].proc.sigkill();
    sys.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(10))
        .await;
    let mut jobs_seen = sys.nats_client().subscribe("podperf.jobs.>").await.unwrap();

    let cases = refused_batches();
    for (label, payload, code, field) in &cases {
        let err = match call_raw_reply(sys.client(), endpoint::JOBS_SUBMIT, payload.clone()).await {
            Err(e) => e,
            Ok(v) => panic!("{label}: accepted: {v}"),
        };
        assert_eq!(err.kind(), ErrorKind::Refused, "{label}: {err}");
        assert_eq!(err.code(), Some(*code), "{label}: {err}");
        let api = err.api_error().unwrap();
        assert!(!api.message.is_empty(), "{label}");
        if let Some(field) = field {
            assert_eq!(api.field.as_deref(), Some(*field), "{label}: {api:?}");
        }
    }

    // Larger than the server's max_payload (1 MiB): refused before it leaves the client, and
    // the dispatcher is unaffected.
    let huge = serde_json::to_vec(&json!({"jobs": [noop(&"x".repeat(2 << 20), 0)]})).unwrap();
    let r = sys
        .client()
        .call_raw(endpoint::JOBS_SUBMIT, huge.into())
        .await;
    assert!(r.is_err(), "an oversized payload was answered: {r:?}");
    assert_ne!(r.unwrap_err().kind(), ErrorKind::Refused);

    // Other endpoints.
    let others: [(&str, &[u8], ErrorCode); 7] = [
        (
            endpoint::JOBS_GET,
            br#"{"job_id": "../../etc/passwd"}"#,
            ErrorCode::BadRequest,
        ),
        (
            endpoint::JOBS_GET,
            br#"{"job_id": "01970000-0000-7000-8000-000000000000"}"#,
            ErrorCode::NotFound,
        ),
        (endpoint::JOBS_GET, b"[]", ErrorCode::BadRequest),
        (
            endpoint::JOBS_LIST,
            br#"{"state": "rm -rf"}"#,
            ErrorCode::BadRequest,
        ),
        (
            endpoint::JOBS_LIST,
            br#"{"limit": "-f"}"#,
            ErrorCode::BadRequest,
        ),
        (
            endpoint::JOBS_CANCEL,
            br#"{"job_id": "01970000-0000-7000-8000-000000000000"}"#,
            ErrorCode::NotFound,
        ),
        (
            endpoint::RUNS_START,
            br#"{"samples": "; rm -rf /"}"#,
            ErrorCode::BadRequest,
        ),
    ];
    for (ep, body, code) in others {
        let err = call_raw_reply(sys.client(), ep, body.to_vec())
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(code),
            "{ep} {}: {err}",
            String::from_utf8_lossy(body)
        );
    }

    // Nothing stored, nothing dispatched, nothing executed.
    let listed = sys.client().list(&Default::default()).await.unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let quiet = tokio::time::timeout(Duration::from_secs(1), jobs_seen.next()).await;
    assert!(quiet.is_err(), "something was dispatched: {quiet:?}");
    let log = sys.workers[0].proc.log() + &sys.workers[1].proc.log();
    assert!(
        !log.contains("job finished"),
        "a worker ran something:\n{log}"
    );
    let tools = sys.worker_tools_running();
    assert!(tools.is_empty(), "a worker started something: {tools:?}");
    println!("FIGURES bad input: {} refused API requests + 1 oversized + 7 other endpoints; 0 stored, 0 dispatched", cases.len());

    // And the dispatcher still works.
    let ok = sys.submit_ok(vec![noop("pod-a", 0)]).await;
    sys.wait_terminal(&ok, Duration::from_secs(10)).await;
    assert_eq!(sys.get(ok[0]).await.unwrap().state, JobState::Succeeded);
}

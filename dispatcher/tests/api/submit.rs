//! Submits: refused batches (nothing stored, nothing dispatched), resolved addresses, gets and lists.

use std::collections::HashSet;

use podperf_protocol::now_ms;

use super::*;

/// One submit that must be refused: the raw request, the code, and the field it must name.
struct Refusal {
    name: &'static str,
    body: Vec<u8>,
    code: ErrorCode,
    field: Option<&'static str>,
}

fn refusal(name: &'static str, jobs: Value, code: ErrorCode, field: &'static str) -> Refusal {
    Refusal {
        name,
        body: serde_json::to_vec(&json!({ "jobs": jobs })).unwrap(),
        code,
        field: Some(field),
    }
}

fn bad_request(name: &'static str, body: &str) -> Refusal {
    Refusal {
        name,
        body: body.as_bytes().to_vec(),
        code: ErrorCode::BadRequest,
        field: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_refuses_bad_batches_whole_and_stores_and_dispatches_nothing() {
    let env = Env::start().await;
    let mut a1 = env
        .register(worker("w-alpha-1", "pod-a1", "n1", "10.244.1.2"))
        .await;
    let mut a2 = env
        .register(worker("w-alpha-2", "pod-a2", "n1", "10.244.1.3"))
        .await;
    let mut no_iperf = worker("w-beta", "pod-b", "n2", "10.244.2.2");
    no_iperf.tools.retain(|t| t.tool != Tool::Iperf3);
    let mut no_iperf_listed = worker("w-gamma", "pod-c", "n3", "10.244.3.2");
    for t in &mut no_iperf_listed.tools {
        if t.tool == Tool::Iperf3 {
            t.available = false;
        }
    }
    let mut b = env.register(no_iperf).await;
    let mut c = env.register(no_iperf_listed).await;
    for w in [&mut a1, &mut a2, &mut b, &mut c] {
        w.listen().await;
    }
    let mut observed = observe_jobs(&env).await;

    let good = noop("pod-a1");
    let cases = [
        refusal(
            "unknown source",
            json!([noop("ghost")]),
            ErrorCode::UnknownWorker,
            "jobs[0].source",
        ),
        refusal(
            "unknown target worker",
            json!([{"source": "pod-a1", "target": {"worker": "ghost"}, "params": {"kind": "ping"}}]),
            ErrorCode::UnknownWorker,
            "jobs[0].target.worker",
        ),
        refusal(
            "ambiguous pod-name prefix",
            json!([noop("pod-a")]),
            ErrorCode::AmbiguousWorker,
            "jobs[0].source",
        ),
        refusal(
            "ambiguous id prefix as a target",
            json!([{"source": "pod-b", "target": {"worker": "w-alpha"}, "params": {"kind": "ping"}}]),
            ErrorCode::AmbiguousWorker,
            "jobs[0].target.worker",
        ),
        refusal(
            "ping count out of bounds",
            json!([{"source": "pod-a1", "target": {"worker": "pod-b"},
                    "params": {"kind": "ping", "count": 5000}}]),
            ErrorCode::InvalidParam,
            "jobs[0].params.count",
        ),
        refusal(
            "ping interval below the minimum",
            json!([{"source": "pod-a1", "target": {"worker": "pod-b"},
                    "params": {"kind": "ping", "interval_ms": 10}}]),
            ErrorCode::InvalidParam,
            "jobs[0].params.interval_ms",
        ),
        refusal(
            "iperf3 streams out of bounds",
            json!([{"source": "pod-a1", "target": {"worker": "pod-a2"},
                    "params": {"kind": "iperf3", "parallel": 17}}]),
            ErrorCode::InvalidParam,
            "jobs[0].params.parallel",
        ),
        refusal(
            "timeout out of bounds",
            json!([{"source": "pod-a1", "params": {"kind": "noop"}, "timeout_s": 0}]),
            ErrorCode::InvalidParam,
            "jobs[0].timeout_s",
        ),
        refusal(
            "probe without a target",
            json!([{"source": "pod-a1", "params": {"kind": "traceroute"}}]),
            ErrorCode::InvalidParam,
            "jobs[0].target",
        ),
        refusal(
            "address outside the allow-list",
            json!([{"source": "pod-a1", "target": {"address": "8.8.8.8"},
                    "params": {"kind": "ping"}}]),
            ErrorCode::AddressNotAllowed,
            "jobs[0].target.address",
        ),
        refusal(
            "iperf3 missing from the tool list",
            json!([{"source": "pod-b", "target": {"worker": "pod-a1"},
                    "params": {"kind": "iperf3"}}]),
            ErrorCode::ToolMissing,
            "jobs[0].source",
        ),
        refusal(
            "iperf3 listed as unavailable",
            json!([{"source": "w-gamma", "target": {"worker": "pod-a1"},
                    "params": {"kind": "iperf3"}}]),
            ErrorCode::ToolMissing,
            "jobs[0].source",
        ),
        refusal("empty batch", json!([]), ErrorCode::InvalidParam, "jobs"),
        refusal(
            "only the second job has a bad parameter",
            json!([good, {"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "count": 0}}]),
            ErrorCode::InvalidParam,
            "jobs[1].params.count",
        ),
        refusal(
            "only the second job names an unknown worker",
            json!([good, noop("ghost")]),
            ErrorCode::UnknownWorker,
            "jobs[1].source",
        ),
        refusal(
            "only the second job is refused by the allow-list",
            json!([good, {"source": "pod-a2", "target": {"address": "127.0.0.1"},
                          "params": {"kind": "ping"}}]),
            ErrorCode::AddressNotAllowed,
            "jobs[1].target.address",
        ),
        bad_request("malformed JSON", r#"{"jobs": ["#),
        bad_request("not an object", r#"[1, 2]"#),
        bad_request("empty payload", ""),
        bad_request(
            "jobs of the wrong type",
            r#"{"jobs": {"source": "pod-a1"}}"#,
        ),
        bad_request(
            "source of the wrong type",
            r#"{"jobs": [{"source": 5, "params": {"kind": "noop"}}]}"#,
        ),
        bad_request(
            "count of the wrong type",
            r#"{"jobs": [{"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "count": "5"}}]}"#,
        ),
        bad_request(
            "negative count",
            r#"{"jobs": [{"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "count": -1}}]}"#,
        ),
        bad_request(
            "unknown kind",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "shell"}}]}"#,
        ),
        bad_request(
            "missing kind",
            r#"{"jobs": [{"source": "pod-a1", "params": {"count": 3}}]}"#,
        ),
        bad_request(
            "free-form tool flags",
            r#"{"jobs": [{"source": "pod-a1", "target": {"worker": "pod-b"},
                          "params": {"kind": "ping", "flags": "-f"}}]}"#,
        ),
        bad_request(
            "unknown spec field",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "noop"}, "argv": ["sh"]}]}"#,
        ),
        bad_request(
            "unknown request field",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "noop"}}], "priority": 1}"#,
        ),
        bad_request(
            "unparsable address",
            r#"{"jobs": [{"source": "pod-a1", "target": {"address": "10.99.0.300"},
                          "params": {"kind": "ping"}}]}"#,
        ),
        bad_request(
            "only the second job is malformed",
            r#"{"jobs": [{"source": "pod-a1", "params": {"kind": "noop"}},
                         {"source": "pod-a1", "params": {"kind": "noop", "sleep_ms": "x"}}]}"#,
        ),
    ];
    for case in &cases {
        let err = match call_raw_reply(&env.api, endpoint::JOBS_SUBMIT, case.body.clone()).await {
            Err(e) => e,
            Ok(v) => panic!("{}: accepted: {v}", case.name),
        };
        assert_eq!(err.kind(), ErrorKind::Refused, "{}: {err}", case.name);
        assert_eq!(err.code(), Some(case.code), "{}: {err}", case.name);
        let api = err.api_error().unwrap();
        assert_eq!(api.field.as_deref(), case.field, "{}: {api:?}", case.name);
        assert!(!api.message.is_empty(), "{}", case.name);
    }
    // The error for free-form flags says which field is unknown (serde's message, the only
    // place that names it).
    let flags = cases
        .iter()
        .find(|c| c.name == "free-form tool flags")
        .unwrap();
    let err = call_raw_reply(&env.api, endpoint::JOBS_SUBMIT, flags.body.clone())
        .await
        .unwrap_err();
    let api = err.api_error().expect("a refusal");
    assert!(api.message.contains("flags"), "{api:?}");

    assert_quiet(&mut observed).await;
    for w in [&mut a1, &mut a2, &mut b, &mut c] {
        assert!(w.drain().is_empty(), "{} got a command", w.id());
    }
    assert!(
        env.api.list(&all_jobs()).await.unwrap().is_empty(),
        "nothing stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_inside_the_allowed_cidrs_is_accepted_and_resolved() {
    let env = Env::start().await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    let id = env
        .api
        .submit_one(spec(
            json!({"source": "pod-1", "target": {"address": "10.99.3.4"},
               "params": {"kind": "ping", "count": 3}}),
        ))
        .await
        .unwrap();
    let run = run_of(w.next_command(SOON).await);
    assert_eq!(run.job_id, id);
    let target = run.target.expect("a resolved target");
    assert_eq!(target.ip, "10.99.3.4".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(target.port, env.cfg.default_iperf3_port);
    assert_eq!(target.worker_id, None);
    let rec = env.api.get(id).await.unwrap();
    assert_eq!(rec.source_worker, "w1");
    assert_eq!(rec.target_ip, Some(target.ip));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_get_and_list_answer_not_found_and_filters() {
    let env = Env::start().await;
    let err = env.api.get(Uuid::now_v7()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    // Requests the typed client cannot even express.
    let err = call_raw_reply(&env.api, endpoint::JOBS_GET, r#"{"job_id": "nope"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest), "{err}");
    let err = call_raw_reply(&env.api, endpoint::JOBS_LIST, r#"{"state": "sleeping"}"#)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::BadRequest), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_page_is_cut_to_fit_one_nats_message() {
    const MAX_PAYLOAD: usize = 8192;
    let env = Env::start_with_nats_config(&format!("max_payload: {MAX_PAYLOAD}\n")).await;
    let _w = env
        .register(worker("w-list", "pod-list", "n1", "10.244.1.2"))
        .await;
    // One job per millisecond: pages continue at the oldest `created_at_ms` shown.
    let mut submitted = HashSet::new();
    for _ in 0..40 {
        let before = now_ms();
        submitted.insert(env.api.submit_one(noop("w-list")).await.unwrap());
        eventually(SOON, "the clock passes the job's millisecond", || async {
            (now_ms() > before).then_some(())
        })
        .await;
    }
    let mut seen = HashSet::new();
    let (mut until, mut cut) = (None, 0);
    for _ in 0..40 {
        let req = ListJobsRequest {
            until_ms: until,
            limit: Some(100),
            ..all_jobs()
        };
        let page = env.api.list_page(&req).await.expect("a page, not an error");
        let size = serde_json::to_vec(&page).unwrap().len();
        assert!(size <= MAX_PAYLOAD, "a page of {size} bytes");
        assert!(!page.jobs.is_empty());
        seen.extend(page.jobs.iter().map(|j| j.job_id));
        if !page.truncated {
            break;
        }
        cut += 1;
        until = page.jobs.iter().map(|j| j.created_at_ms).min();
    }
    assert!(
        cut > 0,
        "40 records of a few hundred bytes do not fit in {MAX_PAYLOAD} bytes"
    );
    assert_eq!(seen, submitted, "every job is on some page");
}

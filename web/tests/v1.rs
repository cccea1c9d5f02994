//! The published design's v1 API with its users' request shapes, against a real system: the
//! client list, tasks created by pod UID and by pod IP reaching `TaskStatus` 3 with the tool's
//! raw output, and the refusals of `task_param` (nothing runs).

mod common;

use std::time::Duration;

use common::Web;
use serde_json::{json, Value};

fn task(web: &Web, kind: &str, param: &str) -> Value {
    json!({
        "src_pod_uid": web.worker_id("pod-a"), "src_pod_ip": "127.0.0.131",
        "dst_pod_uid": web.worker_id("pod-b"), "dst_pod_ip": "127.0.0.132",
        "task_type": kind, "task_param": param,
    })
}

/// Polls the task until it is finished or failed.
async fn finished(web: &Web, id: &str) -> Value {
    let what = format!("task {id} ends");
    podperf_testkit::eventually(Duration::from_secs(30), &what, || async {
        let (st, body) = web
            .get(&format!("/api/v1/external/task?task_id={id}"))
            .await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(body["status"], 0);
        let status = body["data"]["TaskStatus"].as_u64().unwrap();
        (status >= 3).then(|| body["data"].clone())
    })
    .await
}

#[tokio::test]
async fn clients_and_tasks_the_old_way() {
    let web = Web::two_workers("127.0.0.131", "127.0.0.132").await;

    let (st, body) = web.get("/api/v1/external/clients").await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        (body["status"].as_i64(), body["msg"].as_str()),
        (Some(0), Some(""))
    );
    let a = &body["data"][0];
    assert_eq!(a["PodName"], "pod-a");
    assert_eq!(a["PodUID"], web.worker_id("pod-a").as_str());
    assert_eq!(a["PodIP"], "127.0.0.131");
    assert_eq!(a["NodeName"], "node-1");
    assert_eq!(a["NodeIP"], "127.0.0.131");
    assert_eq!(a["ClientStatus"], 1);
    assert!(a["ID"].is_u64());
    for key in ["RegisterTime", "UpdateTime"] {
        let t = a[key].as_str().unwrap();
        humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{key} {t}: {e}"));
    }

    // A ping by pod UID, an iperf by pod IP only (the old clients' two ways).
    let ping = task(&web, "ping", "-c 5");
    let mut iperf = task(&web, "iperf", "-i 1 -f M");
    iperf["src_pod_uid"] = json!("");
    iperf["dst_pod_uid"] = json!("");
    let (st, body) = web
        .post("/api/v1/external/task/create", &json!([ping, iperf]))
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["status"], 0, "{body}");
    let ids: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);

    let p = finished(&web, &ids[0]).await;
    assert_eq!(p["TaskStatus"], 3, "{p}");
    assert_eq!(p["TaskType"], "ping");
    assert_eq!(p["TaskID"], ids[0].as_str());
    assert_eq!(p["TaskParam"], "-c 5 -i 0.2 -s 56");
    assert_eq!(p["SrcPodUID"], web.worker_id("pod-a").as_str());
    assert_eq!(
        (p["SrcPodIP"].as_str(), p["DstPodIP"].as_str()),
        (Some("127.0.0.131"), Some("127.0.0.132"))
    );
    let out = p["TaskResult"].as_str().unwrap();
    assert!(out.contains("5 packets transmitted, 5 received"), "{out}");
    assert!(p["ID"].is_u64());

    let i = finished(&web, &ids[1]).await;
    assert_eq!(i["TaskStatus"], 3, "{i}");
    assert_eq!(i["TaskType"], "iperf");
    assert_eq!(i["DstPodUID"], web.worker_id("pod-b").as_str());
    let out: Value = serde_json::from_str(i["TaskResult"].as_str().unwrap()).unwrap();
    assert!(
        out["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[tokio::test]
async fn refusals_name_the_flag_and_run_nothing() {
    let web = Web::two_workers("127.0.0.133", "127.0.0.134").await;
    let jobs_before = web.get("/api/v2/jobs?limit=1000").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();

    for (kind, param, names) in [
        ("ping", "-f", "-f"),
        ("ping", "-c 5; reboot", "';'"),
        ("ping", "-c $(id)", "'$'"),
        ("ping", "-c 5000", "-c 5000 is out of bounds"),
        ("traceroute", "-m 100", "-m 100"),
        ("iperf", "-t 10 -P 99", "-P 99"),
        ("shell", "-c 1", "task_type"),
    ] {
        let mut t = task(&web, kind, param);
        t["src_pod_uid"] = json!(web.worker_id("pod-a"));
        // The refused task comes second: the first one must not run either.
        let body = json!([task(&web, "ping", "-c 1"), t]);
        let (st, got) = web.post("/api/v1/external/task/create", &body).await;
        assert_eq!(st, 400, "{kind} {param}: {got}");
        assert_eq!(got["status"], -1, "{got}");
        let msg = got["msg"].as_str().unwrap();
        assert!(msg.contains(names), "{kind} {param:?}: {msg}");
        assert!(msg.contains("[1]"), "names the task: {msg}");
    }

    // Unknown pods, no body, bad bodies, unknown or missing task ids.
    let mut t = task(&web, "ping", "-c 1");
    t["src_pod_uid"] = json!("no-such-uid");
    let (st, got) = web.post("/api/v1/external/task/create", &json!([t])).await;
    assert_eq!(
        (st.as_u16(), got["status"].as_i64()),
        (422, Some(-1)),
        "{got}"
    );
    assert!(
        got["msg"].as_str().unwrap().contains("no-such-uid"),
        "{got}"
    );
    for body in ["[]", "{\"a\":1}", "[{"] {
        let (st, got) = web.post_raw("/api/v1/external/task/create", body).await;
        assert_eq!(
            (st.as_u16(), got["status"].as_i64()),
            (400, Some(-1)),
            "{body}: {got}"
        );
    }
    let nobody = uuid::Uuid::new_v4();
    let (st, got) = web
        .get(&format!("/api/v1/external/task?task_id={nobody}"))
        .await;
    assert_eq!(
        (st.as_u16(), got["status"].as_i64()),
        (404, Some(-1)),
        "{got}"
    );
    for q in ["", "?task_id=", "?task_id=12"] {
        let (st, got) = web.get(&format!("/api/v1/external/task{q}")).await;
        assert_eq!(
            (st.as_u16(), got["status"].as_i64()),
            (400, Some(-1)),
            "{q}: {got}"
        );
    }

    let jobs_after = web.get("/api/v2/jobs?limit=1000").await.1["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(jobs_before, jobs_after, "a refused request ran something");
}

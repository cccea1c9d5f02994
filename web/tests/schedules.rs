//! `/api/v2/schedules` over a real listener in front of a real system (the dispatcher's minimum
//! period lowered to 1 s): add, list (with the last run once one ran), pause, resume, delete, and
//! bad input refused with the API's error envelope; and the `#/schedules` page in a real
//! browser (headless chromium over WebDriver).

mod browser_driver;
mod common;

use std::time::Duration;

use browser_driver::Browser;
use common::{assert_error, config, Web, TOKEN};
use podperf_testkit::{eventually, Cluster, ClusterOpts, WorkerSpec};
use reqwest::Method;
use serde_json::{json, Value};

async fn web() -> Web {
    let opts = ClusterOpts {
        dispatcher_env: vec![("PODPERF_SCHEDULE_MIN_EVERY_MS".into(), "1000".into())],
        ..ClusterOpts::default()
    };
    let mut c = Cluster::start(opts).await;
    c.add_worker(WorkerSpec::new("pod-a", "node-1", "127.0.0.121"));
    c.add_worker(WorkerSpec::new("pod-b", "node-2", "127.0.0.122"));
    c.wait_workers(&["pod-a", "pod-b"], Duration::from_secs(20))
        .await;
    Web::serve(c, config()).await
}

fn listed(list: &Value, name: &str) -> Option<Value> {
    list["schedules"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_added_listed_paused_resumed_and_removed_over_http() {
    let web = web().await;
    let body = json!({
        "name": "mesh",
        "every_ms": 2000,
        "jitter": 0.2,
        "run": {"sweep": {"count": 1, "interval_ms": 20}}
    });
    let (status, added) = web.post("/api/v2/schedules", &body).await;
    assert_eq!(status.as_u16(), 201, "{added}");
    assert_eq!(
        (added["name"].as_str(), added["status"].as_str()),
        (Some("mesh"), Some("waiting"))
    );

    // Its first run: listed with the last run (an ordinary run, tagged) and the next due time.
    let ran = eventually(
        Duration::from_secs(30),
        "the first scheduled run finished",
        || async {
            let (_, list) = web.get("/api/v2/schedules").await;
            let s = listed(&list, "mesh")?;
            (s["last_run"]["outcome"] == "succeeded").then_some(s)
        },
    )
    .await;
    assert!(
        ran["next_due_ms"].as_u64() > ran["last_run"]["due_at_ms"].as_u64(),
        "{ran}"
    );
    let run_id = ran["last_run"]["run_id"].as_str().unwrap();
    let (status, run) = web.get(&format!("/api/v2/runs/{run_id}")).await;
    assert_eq!(status.as_u16(), 200, "{run}");
    assert_eq!(run["progress"]["schedule"], "mesh", "{run}");
    let (_, runs) = web.get("/api/v2/runs").await;
    assert!(
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["schedule"] == "mesh"),
        "{runs}"
    );

    let (status, paused) = web.post("/api/v2/schedules/mesh/pause", &json!({})).await;
    assert_eq!(
        (status.as_u16(), &paused["paused"]),
        (200, &json!(true)),
        "{paused}"
    );
    let (status, resumed) = web.post("/api/v2/schedules/mesh/resume", &json!({})).await;
    assert_eq!(
        (status.as_u16(), &resumed["paused"]),
        (200, &json!(false)),
        "{resumed}"
    );

    let (status, removed) = web
        .send(web.request(Method::DELETE, "/api/v2/schedules/mesh"))
        .await;
    assert_eq!(
        (status.as_u16(), removed["name"].as_str()),
        (200, Some("mesh")),
        "{removed}"
    );
    let (_, list) = web.get("/api/v2/schedules").await;
    assert!(listed(&list, "mesh").is_none(), "{list}");

    // Refused: malformed bodies, values out of bounds (naming the field), unknown names.
    for raw in [
        "{not json",
        r#"{"name":"x","every_ms":2000}"#,
        r#"{"name":"x","every_ms":2000,"run":{"sweep":{}},"extra":1}"#,
    ] {
        assert_error(
            &web.post_raw("/api/v2/schedules", raw).await,
            400,
            "bad_request",
        );
    }
    for (body, field) in [
        (
            json!({"name": "x", "every_ms": 500, "run": {"sweep": {}}}),
            "every_ms",
        ),
        (
            json!({"name": "x", "every_ms": 2000, "jitter": 0.9, "run": {"sweep": {}}}),
            "jitter",
        ),
        (
            json!({"name": "a b", "every_ms": 2000, "run": {"sweep": {}}}),
            "name",
        ),
        (
            json!({"name": "x", "every_ms": 2000, "run": {"matrix": {"samples": 0}}}),
            "run.matrix.samples",
        ),
    ] {
        let err = assert_error(
            &web.post("/api/v2/schedules", &body).await,
            400,
            "invalid_param",
        );
        assert_eq!(err["field"], field, "{err}");
    }
    let gone = web
        .send(web.request(Method::DELETE, "/api/v2/schedules/nothing"))
        .await;
    assert_error(&gone, 404, "not_found");
    assert_error(
        &web.post("/api/v2/schedules/nothing/pause", &json!({}))
            .await,
        404,
        "not_found",
    );
    let (_, list) = web.get("/api/v2/schedules").await;
    assert_eq!(list["schedules"], json!([]), "nothing bad was stored");
}

/// The page: add a sweep schedule with the form, see its run succeed (with a link to the run),
/// a duplicate refused with the API's message, pause it, remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedules_page_in_a_real_browser() {
    let web = web().await;
    let b = Browser::start().await;
    b.client.goto(&web.url("/ui/#/schedules")).await.unwrap();
    b.find("#token").await.send_keys(TOKEN).await.unwrap();
    b.find("#login-form button").await.click().await.unwrap();
    b.wait_js(
        "the page shows",
        "return !!document.getElementById('no-schedules')",
    )
    .await;

    let add = |name: &'static str| {
        let b = &b;
        async move {
            let field = b.find("#sched-name").await;
            field.clear().await.unwrap();
            field.send_keys(name).await.unwrap();
            let every = b.find("#sched-every").await;
            every.clear().await.unwrap();
            every.send_keys("2").await.unwrap();
            let count = b.find("#sched-count").await;
            count.clear().await.unwrap();
            count.send_keys("1").await.unwrap();
            b.find("#sched-add").await.click().await.unwrap();
        }
    };
    add("ui-mesh").await;
    let row = "document.querySelector('tr[data-schedule=\"ui-mesh\"]')";
    b.wait_js_within(
        Duration::from_secs(40),
        "the scheduled run succeeded",
        &format!(
            "const r = {row}; return !!r && !!r.querySelector('[data-outcome=\"succeeded\"]')"
        ),
    )
    .await;
    let link = b
        .js(&format!(
            "return {row}.querySelector('a').getAttribute('href')"
        ))
        .await;
    assert!(link.as_str().unwrap().starts_with("#/matrix/"), "{link}");
    b.screenshot("schedules").await;

    // The same name again: the dispatcher's refusal is shown as text.
    add("ui-mesh").await;
    let err = b
        .wait_js(
            "the refusal shows",
            "const e = document.getElementById('schedule-error').textContent; return e.includes('exists') && e",
        )
        .await;
    assert!(
        err.as_str().unwrap().starts_with("invalid_param (name)"),
        "{err}"
    );

    b.js(&format!(
        "{row}.querySelector('button.pause').click(); return true"
    ))
    .await;
    b.wait_js(
        "paused",
        &format!("return {row}.querySelector('td.status').dataset.status === 'paused'"),
    )
    .await;
    b.js(&format!(
        "{row}.querySelector('button.rm').click(); return true"
    ))
    .await;
    b.wait_js(
        "removed",
        "return !!document.getElementById('no-schedules')",
    )
    .await;
    let (_, list) = web.get("/api/v2/schedules").await;
    assert_eq!(list["schedules"], json!([]));
    b.close().await;
}

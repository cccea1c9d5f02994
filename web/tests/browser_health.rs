//! The health findings on the UI's heatmap, in a real browser (headless chromium over WebDriver)
//! against a real system whose node with a hostile name cannot send (its fping sends from an
//! address this host does not have): after a round (`POST /api/v2/health`) and a matrix run,
//! the run page shows the health panel with the finding, as text, and the heatmap marks the
//! node's row and column labels (class `fault`, a tooltip with the message).

mod browser_driver;
mod common;
mod health_common;

use browser_driver::Browser;
use common::{Web, TOKEN};
use health_common::{broken_fping, cluster_with_a_mute_node};
use serde_json::json;

/// A node name a page would run as script if it wrote it as HTML.
const HOSTILE_NODE: &str = "<img src=x onerror=alert(2)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heatmap_marks_the_node_the_health_findings_name() {
    let fping = broken_fping();
    let c = cluster_with_a_mute_node(&fping, HOSTILE_NODE).await;
    let mut web = Web::serve(c, common::config()).await;

    let (st, health) = web
        .post("/api/v2/health", &json!({"count": 2, "interval_ms": 20}))
        .await;
    assert_eq!(st, 200, "{health}");
    let message = format!("{HOSTILE_NODE} cannot send: reaches 0 of 2 node pairs");
    assert_eq!(
        health["findings"][0]["message"],
        message.as_str(),
        "{health}"
    );
    let run = json!({"mesh": true, "samples": 1, "ping_count": 2, "iperf3_duration_s": 1,
                     "traceroute": false, "latency": false, "mtu": false});
    let (st, started) = web.post("/api/v2/runs", &run).await;
    assert_eq!(st.as_u16() / 100, 2, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();

    let b = Browser::start().await;
    b.client.goto(&web.url("/ui/")).await.unwrap();
    b.wait_js(
        "the token form shows",
        "return !document.getElementById('login').hidden",
    )
    .await;
    b.find("#token").await.send_keys(TOKEN).await.unwrap();
    b.find("#login-form button").await.click().await.unwrap();
    b.client
        .goto(&format!("{}/ui/#/matrix/{run_id}", web.base))
        .await
        .unwrap();

    // The panel: the finding, its node name as text.
    let shown = b
        .wait_js(
            "the health panel lists the finding",
            "const p = document.getElementById('health-panel'); return p && p.dataset.state === 'problems' && [...p.querySelectorAll('li.finding')].map(l => l.dataset.finding + '|' + l.textContent).join(',')",
        )
        .await;
    assert_eq!(shown, format!("cannot_send|{message}").as_str());
    // The heatmap (node grid): the node's row and column labels are marked, with the message.
    b.wait_js_within(
        std::time::Duration::from_secs(120),
        "the run's heatmap is drawn",
        "return document.querySelector('#heatmap rect.cell')",
    )
    .await;
    let marked = b
        .wait_js(
            "the named node's labels are marked",
            "const m = [...document.querySelectorAll('#heatmap text.fault')]; return m.length >= 2 && m.map(t => t.classList.contains('row-label') + ':' + t.firstChild.textContent + ':' + t.querySelector('title').textContent).sort().join(',')",
        )
        .await;
    assert_eq!(
        marked,
        format!("false:{HOSTILE_NODE}:{message},true:{HOSTILE_NODE}:{message}").as_str()
    );
    // Only that node's labels.
    assert_eq!(
        b.js("return document.querySelectorAll('#heatmap .fault').length")
            .await,
        2
    );
    b.screenshot("heatmap-health").await;
    // Text, not markup: no image made of the name, no script ran.
    assert_eq!(
        b.js("return document.querySelectorAll('main img').length")
            .await,
        0
    );
    assert!(
        b.client.get_alert_text().await.is_err(),
        "an alert opened: the node name ran as script"
    );
    b.close().await;
    web.stop();
}

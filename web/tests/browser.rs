//! The web UI in a real browser (headless chromium over WebDriver) against a real system
//! (testkit's cluster: nats-server, redis-server, the dispatcher, loopback workers) and
//! podperf-web with a token on a free port: the token form; the overview with its workers,
//! joining and leaving live, a hostile pod name shown as text; a ping run from the form with its
//! chart; the jobs list, filtered, and one job opened; a matrix run with its progress bar,
//! comparison table (with the latency and path-MTU columns) and heatmap, a cell's details linking
//! to its jobs; the status page showing the leading dispatcher.
//!
//! Screenshots go to `target/screenshots/` (and `docs/screenshots/` with
//! `PODPERF_SCREENSHOTS=docs`). Build the binaries first: `cargo build --workspace --bins`.

mod browser_driver;
mod common;

use std::time::Duration;

use browser_driver::Browser;
use common::{Web, TOKEN};
use podperf_testkit::{Cluster, ClusterOpts, WorkerSpec};

/// A pod name a page would run as script if it wrote it as HTML (worker names are free text;
/// only the worker id is restricted).
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

async fn system() -> Web {
    let mut c = Cluster::start(ClusterOpts::default()).await;
    c.add_worker(WorkerSpec::new("pod-a", "node-1", "127.0.0.111"));
    c.add_worker(WorkerSpec::new("pod-b", "node-2", "127.0.0.112"));
    // The worker id must be of [A-Za-z0-9_-] (testkit makes it from the pod name).
    let mut hostile = WorkerSpec::new(HOSTILE, "node-3", "127.0.0.113");
    hostile.env.push(("POD_UID".into(), "uid-hostile".into()));
    c.add_worker(hostile);
    let listed = tokio::time::timeout(
        Duration::from_secs(60),
        c.wait_workers(&["pod-a", "pod-b", HOSTILE], Duration::from_secs(60)),
    )
    .await;
    assert!(
        listed.is_ok(),
        "listed: {:?}\n{}",
        c.listed_pods().await,
        c.logs()
    );
    Web::serve(c, common::config()).await
}

/// A script declaring `p`: the pod names of the workers table, sorted, joined with `|`.
const PODS: &str = "const p = [...document.querySelectorAll('#workers-table td.pod')]\
     .map(td => td.firstChild.textContent).sort().join('|');";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_in_a_real_browser() {
    let mut web = system().await;
    let b = Browser::start().await;

    // The page and its scripts come with a CSP that forbids inline script.
    let res = web.http.get(web.url("/ui/")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // `/` leads a browser to the page (which holds no data; the API behind it needs the token).
    let res = web.http.get(web.url("/")).send().await.unwrap();
    assert_eq!(res.url().path(), "/ui/");
    assert!(res.text().await.unwrap().contains("/ui/js/app.js"));

    // The token form first; then the overview.
    b.client.goto(&web.url("/ui/")).await.unwrap();
    b.wait_js(
        "the token form shows",
        "return !document.getElementById('login').hidden",
    )
    .await;
    b.screenshot("token").await;
    b.find("#token").await.send_keys(TOKEN).await.unwrap();
    b.find("#login-form button").await.click().await.unwrap();
    let pods = b
        .wait_js(
            "the three workers are listed",
            &format!("{PODS} return p.split('|').length === 3 && p"),
        )
        .await;
    assert_eq!(pods, format!("{HOSTILE}|pod-a|pod-b").as_str());
    assert_eq!(
        b.js("return document.getElementById('count-nodes').textContent")
            .await,
        "3"
    );
    // The hostile name is text: no element was made of it, no script ran.
    assert_eq!(
        b.js("return document.querySelectorAll('main img').length")
            .await,
        0
    );
    assert!(
        b.client.get_alert_text().await.is_err(),
        "an alert opened: the pod name ran as script"
    );
    // The token is kept in the tab, never in the address.
    assert_eq!(
        b.js("return sessionStorage.getItem('podperf-token')").await,
        TOKEN
    );
    assert!(!b
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains(TOKEN));
    b.wait_js(
        "the live stream is connected",
        "return document.getElementById('live').classList.contains('on')",
    )
    .await;

    // A worker joins, then leaves: the overview follows live.
    let d = web
        .cluster
        .add_worker(WorkerSpec::new("pod-d", "node-1", "127.0.0.114"));
    b.wait_js(
        "pod-d appears",
        &format!("{PODS} return p.includes('pod-d')"),
    )
    .await;
    b.screenshot("overview").await;
    web.cluster.workers[d].proc.sigterm();
    b.wait_js(
        "pod-d goes",
        &format!("{PODS} return !p.includes('pod-d') && p.split('|').length === 3"),
    )
    .await;

    // Run a test: a ping from the form, followed to its end, with its chart.
    b.client
        .goto(&format!("{}/ui/#/run", web.base))
        .await
        .unwrap();
    b.find("#run-form").await;
    let a = web.worker_id("pod-a");
    let pb = web.worker_id("pod-b");
    b.find("#source").await.select_by_value(&a).await.unwrap();
    b.find("#target").await.select_by_value(&pb).await.unwrap();
    let count = b.find("#param-count").await;
    count.clear().await.unwrap();
    count.send_keys("4").await.unwrap();
    b.find("#run-submit").await.click().await.unwrap();
    let state = b
        .wait_js("the ping ends", "const s = document.querySelector('#job-state [data-state]'); return s && ['succeeded','failed','timed_out','worker_lost','cancelled'].includes(s.dataset.state) && s.dataset.state")
        .await;
    assert_eq!(state, "succeeded", "{}", web.cluster.logs());
    b.wait_js("the RTT chart has a point per reply", "const c = document.getElementById('ping-chart'); return c && c.querySelectorAll('circle.dot').length === 4").await;
    b.screenshot("run-ping").await;

    // A traceroute from the same form: its hops as a table.
    b.find("#kind")
        .await
        .select_by_value("traceroute")
        .await
        .unwrap();
    let hops = b.find("#param-max_hops").await;
    hops.clear().await.unwrap();
    hops.send_keys("3").await.unwrap();
    b.find("#run-submit").await.click().await.unwrap();
    b.wait_js(
        "the traceroute's hops table",
        "const s = document.querySelector('#job-state [data-state]'); \
         return s && s.dataset.state === 'succeeded' && document.querySelectorAll('#hops tbody tr').length",
    )
    .await;
    b.screenshot("run-traceroute").await;
    b.find("#kind").await.select_by_value("ping").await.unwrap();
    let count = b.find("#param-count").await;

    // An out-of-bounds count is refused in the page, naming the field; nothing is sent.
    count.clear().await.unwrap();
    count.send_keys("1001").await.unwrap();
    b.find("#run-submit").await.click().await.unwrap();
    let err = b
        .wait_js(
            "the bound is shown",
            "return document.getElementById('run-error').textContent",
        )
        .await;
    assert!(err.as_str().unwrap().contains("params.count"), "{err}");

    // Jobs: the list, filtered by worker and state, and one job opened.
    b.client
        .goto(&format!("{}/ui/#/jobs", web.base))
        .await
        .unwrap();
    b.wait_js(
        "the jobs are listed",
        "return document.querySelectorAll('table.jobs tbody tr').length >= 1",
    )
    .await;
    b.find("#filter-state")
        .await
        .select_by_value("succeeded")
        .await
        .unwrap();
    b.find("#filter-worker")
        .await
        .select_by_value(&a)
        .await
        .unwrap();
    b.wait_js("only pod-a's succeeded traceroute and ping are left, newest first", "const r = [...document.querySelectorAll('table.jobs tbody tr')]; return r.length === 2 && r[0].textContent.includes('traceroute') && r[1].textContent.includes('ping')").await;
    b.screenshot("jobs").await;
    b.find("table.jobs tbody tr:last-child a")
        .await
        .click()
        .await
        .unwrap();
    b.wait_js("the job page shows the ping", "const s = document.querySelector('#job-state [data-state]'); return s && s.dataset.state === 'succeeded' && document.getElementById('ping-chart')").await;
    assert_eq!(
        b.js("return document.getElementById('job-source').textContent")
            .await,
        "pod-a"
    );

    // Matrix: a mesh run from the form: progress, the comparison table, the heatmap.
    b.client
        .goto(&format!("{}/ui/#/matrix", web.base))
        .await
        .unwrap();
    b.find("#matrix-form").await;
    b.js("const f = (id, v) => document.getElementById(id).value = v; f('samples', 1); f('ping_count', 2); f('iperf3_duration_s', 1); f('max_rtt_ratio', '1000'); document.getElementById('traceroute').checked = false; return 1").await;
    b.find("#matrix-submit").await.click().await.unwrap();
    b.wait_js(
        "the run page opens with its progress bar",
        "return location.hash.startsWith('#/matrix/') && document.getElementById('run-progress')",
    )
    .await;
    let jobs = b
        .wait_js(
            "the progress knows the run's jobs",
            "return +document.getElementById('run-progress').dataset.jobs",
        )
        .await;
    assert_eq!(
        jobs, 24,
        "3 pods, 6 ordered pairs, ping + iperf3 + latency + mtu each"
    );
    b.screenshot("matrix-progress").await;
    eventually_finished(&b).await;
    b.wait_js(
        "the finished run's report is drawn",
        "return document.getElementById('run-heatmap').dataset.final === 'true'",
    )
    .await;
    b.wait_js(
        "the comparison table lists the cross-node class",
        "return document.querySelector('#comparison tr[data-class=pod_cross_node]')",
    )
    .await;
    // The latency percentiles and the path MTU, as the CLI's table shows them.
    let heads = b
        .js("return [...document.querySelectorAll('#comparison thead th')].map(t => t.textContent).join('|')")
        .await;
    let heads = heads.as_str().unwrap();
    assert!(
        heads.contains("|latency p50 / p99|") && heads.contains("|path MTU|"),
        "{heads}"
    );
    let row = "#comparison tr[data-class=pod_cross_node]";
    let latency = b
        .js(&format!(
            "return document.querySelector('{row} td[data-col=latency]').textContent"
        ))
        .await;
    let latency = latency.as_str().unwrap();
    let (p50, p99) = latency
        .trim_end_matches(" ~")
        .trim_end_matches(" ms")
        .split_once(" / ")
        .unwrap_or_else(|| panic!("p50 / p99 ms: {latency}"));
    let number = |v: &str| -> f64 { v.parse().unwrap_or_else(|e| panic!("{e}: {latency}")) };
    let (p50, p99) = (number(p50), number(p99));
    assert!(p50 > 0.0 && p99 >= p50, "{latency}");
    assert_eq!(
        b.js(&format!(
            "return document.querySelector('{row} td[data-col=mtu]').textContent"
        ))
        .await,
        "65535",
        "loopback's path MTU"
    );
    // The gate: no host-network worker here, so node ↔ node is not measured and the RTT check
    // cannot pass (a check whose rows were not both measured fails, as in the CLI).
    assert_eq!(
        b.js("const v = document.getElementById('verdict'); return v && v.dataset.status + '|' + [...v.querySelectorAll('li')].map(l => l.dataset.check + ':' + l.dataset.status).join(',')")
            .await,
        "fail|max_rtt_ratio:fail",
        "the run's verdict under the table"
    );
    let cells = b.wait_js("the node×node heatmap has a cell per ordered node pair", "const h = document.getElementById('heatmap'); return h && h.querySelectorAll('rect.cell').length").await;
    assert_eq!(cells, 6);
    // The hostile pod name in the pod×pod grid is SVG text, not markup.
    b.find("#heat-grid")
        .await
        .select_by_value("pod")
        .await
        .unwrap();
    b.wait_js("the pod grid labels the hostile pod as text", &format!("return [...document.querySelectorAll('#heatmap text')].some(t => t.textContent === {HOSTILE:?})")).await;
    assert_eq!(
        b.js("return document.querySelectorAll('#heatmap image, #heatmap img').length")
            .await,
        0
    );
    b.find("#heat-grid")
        .await
        .select_by_value("node")
        .await
        .unwrap();
    b.wait_js(
        "the node grid is back",
        "return document.querySelectorAll('#heatmap rect.cell').length === 6",
    )
    .await;
    // Hovering a cell shows its figures and its jobs; clicking a job opens it.
    b.js("document.querySelector('#heatmap rect.cell').dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); return 1").await;
    let links = b
        .wait_js(
            "the cell's jobs are listed",
            "return document.querySelectorAll('#cell-details .cell-jobs a').length",
        )
        .await;
    assert_eq!(
        links, 4,
        "one ping, iperf3, latency and mtu job per pair and sample"
    );
    assert!(b
        .js("return document.querySelector('#cell-details .cell-median').textContent")
        .await
        .as_str()
        .unwrap()
        .ends_with("ms"));
    b.screenshot("matrix").await;
    // Open the cell's iperf3 job (the links name job ids; the API says which is which).
    let ids = b
        .js("return [...document.querySelectorAll('#cell-details .cell-jobs a')].map(a => a.textContent)")
        .await;
    let mut iperf3 = None;
    for id in ids.as_array().unwrap() {
        let (_, job) = web
            .get(&format!("/api/v2/jobs/{}", id.as_str().unwrap()))
            .await;
        if job["params"]["kind"] == "iperf3" {
            iperf3 = Some(job["job_id"].as_str().unwrap().to_string());
        }
    }
    let iperf3 = iperf3.expect("the cell links to its iperf3 job");
    b.find(&format!(
        "#cell-details .cell-jobs a[href='#/jobs/{iperf3}']"
    ))
    .await
    .click()
    .await
    .unwrap();
    b.wait_js("the iperf3 job opens with its bandwidth per interval", "const s = document.querySelector('#job-state [data-state]'); return s && s.dataset.state === 'succeeded' && document.querySelector('#iperf3-chart rect.bar')").await;
    b.screenshot("job-iperf3").await;

    // Status: the dispatcher that leads, NATS and Redis reachable, the stores' use.
    b.client
        .goto(&format!("{}/ui/#/status", web.base))
        .await
        .unwrap();
    let leader = b
        .wait_js(
            "the status page shows the leader",
            "const r = document.querySelector('#dispatchers tr[data-role=leader]'); return r && r.dataset.dispatcher",
        )
        .await;
    let (_, status) = web.get("/api/v2/status").await;
    assert_eq!(
        leader, status["dispatchers"][0]["dispatcher_id"],
        "{status}"
    );
    assert_eq!(
        b.js("return ['nats', 'redis'].map(n => document.getElementById('reach-' + n).dataset.reachable).join()")
            .await,
        "true,true"
    );
    assert!(b
        .js("return document.querySelector('#store-jobs td.num').textContent")
        .await
        .as_str()
        .unwrap()
        .contains(" / "));
    b.screenshot("status").await;

    b.close().await;
    web.stop();
}

async fn eventually_finished(b: &Browser) {
    // A mesh run of 24 jobs, the bandwidth and latency tests one node pair at a time.
    b.wait_js_within(
        std::time::Duration::from_secs(120),
        "the run finishes",
        "const p = document.getElementById('run-progress'); return p.dataset.finished === 'true' && p.value === p.max",
    )
    .await;
}

/// The README's screenshots, from the netns testbed (a Flannel-VXLAN replica: pods across nodes,
/// host-network workers, path MTU 1450 on pod paths): `scripts/screenshots.sh` brings the testbed
/// up and runs this inside its infra namespace with `PODPERF_WEB_URL` (the testbed's
/// podperf-web) and, if it has one, `PODPERF_WEB_TOKEN`. Every page is driven as above and
/// checked before its screenshot is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the testbed's podperf-web: scripts/screenshots.sh"]
async fn screenshots_from_the_testbed() {
    let base = std::env::var("PODPERF_WEB_URL").expect(
        "PODPERF_WEB_URL (the testbed's podperf-web, e.g. http://127.0.0.1:8080): \
         run scripts/screenshots.sh",
    );
    let token = std::env::var("PODPERF_WEB_TOKEN").ok();
    let http = reqwest::Client::new();
    let api = |path: &str| {
        let req = http.get(format!("{base}{path}"));
        let req = match &token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let path = path.to_string();
        async move {
            let res = req.send().await.expect("the testbed's podperf-web answers");
            assert!(res.status().is_success(), "{path}: {}", res.status());
            res.json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let workers = api("/api/v2/workers").await["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let id_of = |pod: &str| {
        workers
            .iter()
            .find(|w| w["pod_name"] == pod)
            .and_then(|w| w["worker_id"].as_str())
            .unwrap_or_else(|| panic!("no worker {pod} on the testbed: {workers:?}"))
            .to_string()
    };
    let (from, to) = (id_of("pod-0-0"), id_of("pod-1-0"));
    let b = Browser::start().await;
    b.client.goto(&format!("{base}/ui/")).await.unwrap();
    if let Some(t) = &token {
        b.find("#token").await.send_keys(t).await.unwrap();
        b.find("#login-form button").await.click().await.unwrap();
    }
    b.wait_js(
        "every worker of the testbed is listed",
        &format!(
            "return document.querySelectorAll('#workers-table tr.worker').length === {}",
            workers.len()
        ),
    )
    .await;

    // A ping and a traceroute across nodes (through the VXLAN), from the form.
    b.client.goto(&format!("{base}/ui/#/run")).await.unwrap();
    b.find("#run-form").await;
    b.find("#source")
        .await
        .select_by_value(&from)
        .await
        .unwrap();
    b.find("#target").await.select_by_value(&to).await.unwrap();
    let count = b.find("#param-count").await;
    count.clear().await.unwrap();
    count.send_keys("10").await.unwrap();
    b.find("#run-submit").await.click().await.unwrap();
    b.wait_js("the ping succeeds with a point per reply", "const s = document.querySelector('#job-state [data-state]'); const c = document.getElementById('ping-chart'); return s && s.dataset.state === 'succeeded' && c && c.querySelectorAll('circle.dot').length === 10").await;
    b.screenshot("run-ping").await;
    b.find("#kind")
        .await
        .select_by_value("traceroute")
        .await
        .unwrap();
    b.find("#run-submit").await.click().await.unwrap();
    b.wait_js("the traceroute's hops", "const s = document.querySelector('#job-state [data-state]'); return s && s.dataset.state === 'succeeded' && document.querySelectorAll('#hops tbody tr').length >= 2").await;
    b.screenshot("run-traceroute").await;

    // A mesh matrix run: progress, the table with latency and path MTU, the heatmap.
    b.client.goto(&format!("{base}/ui/#/matrix")).await.unwrap();
    b.find("#matrix-form").await;
    b.js("const f = (id, v) => document.getElementById(id).value = v; f('samples', 1); f('ping_count', 5); f('iperf3_duration_s', 1); return 1").await;
    b.find("#matrix-submit").await.click().await.unwrap();
    b.wait_js(
        "the run has jobs done",
        "const p = document.getElementById('run-progress'); return p && p.value > 0",
    )
    .await;
    b.screenshot("matrix-progress").await;
    b.wait_js_within(
        Duration::from_secs(900),
        "the run finishes and its report is drawn",
        "return document.getElementById('run-heatmap').dataset.final === 'true'",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelector('#comparison tr[data-class=pod_cross_node] td[data-col=mtu]').textContent").await,
        "1450",
        "the VXLAN's path MTU"
    );
    b.js("document.querySelector('#heatmap rect.cell').dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); return 1").await;
    b.wait_js(
        "a cell's jobs",
        "return document.querySelectorAll('#cell-details .cell-jobs a').length",
    )
    .await;
    b.screenshot("matrix").await;
    let ids = b
        .js("return [...document.querySelectorAll('#cell-details .cell-jobs a')].map(a => a.textContent)")
        .await;
    let mut iperf3 = None;
    for id in ids.as_array().unwrap() {
        let job = api(&format!("/api/v2/jobs/{}", id.as_str().unwrap())).await;
        if job["params"]["kind"] == "iperf3" {
            iperf3 = Some(job["job_id"].as_str().unwrap().to_string());
        }
    }
    let iperf3 = iperf3.expect("the cell links to its iperf3 job");
    b.client
        .goto(&format!("{base}/ui/#/jobs/{iperf3}"))
        .await
        .unwrap();
    b.wait_js("the iperf3 job with its bandwidth per interval", "const s = document.querySelector('#job-state [data-state]'); return s && s.dataset.state === 'succeeded' && document.querySelector('#iperf3-chart rect.bar')").await;
    b.screenshot("job-iperf3").await;

    b.client.goto(&format!("{base}/ui/#/jobs")).await.unwrap();
    b.wait_js(
        "the jobs are listed",
        "return document.querySelectorAll('table.jobs tbody tr').length >= 10",
    )
    .await;
    b.screenshot("jobs").await;
    b.client.goto(&format!("{base}/ui/#/")).await.unwrap();
    b.wait_js(
        "the overview with the latest run's table",
        "return document.querySelector('#latest-run #comparison td[data-col=mtu]')",
    )
    .await;
    b.screenshot("overview").await;
    b.client.goto(&format!("{base}/ui/#/status")).await.unwrap();
    b.wait_js(
        "the status page shows the leader",
        "return document.querySelector('#dispatchers tr[data-role=leader]')",
    )
    .await;
    b.screenshot("status").await;
    b.close().await;
}

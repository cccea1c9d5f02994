//! `podperf health` on the netns testbed (3 nodes × 1 pod) with real faults: nothing named on the
//! healthy cluster; 30 % random drop (nftables) on node 2's underlay port → `lossy node-2`;
//! node 1's underlay link down → `isolated node-1`. Needs root and `ip netns` (skipped, with a
//! message, otherwise).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::testbed::{testbed_usable, text, Testbed};

/// The bridge (underlay) drops 30 % of node 2's frames each way, but not its NATS traffic.
const DROP_RULE: &str = "numgen random mod 100 < 30 drop";
const INFRA_IP: &str = "198.18.0.2";

/// (finding, node, peer) of each finding.
fn findings(report: &Value) -> Vec<(String, String, Option<String>)> {
    report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {report}"))
        .iter()
        .map(|f| {
            (
                f["finding"].as_str().unwrap().to_string(),
                f["node"].as_str().unwrap().to_string(),
                f["peer"].as_str().map(String::from),
            )
        })
        .collect()
}

fn health(tb: &Testbed, count: &str) -> (Option<i32>, Value) {
    let started = Instant::now();
    let (code, v, err) = tb.try_podperf(&["health", "--count", count, "--interval-ms", "20"]);
    assert!(
        !v.is_null(),
        "health printed no JSON ({code:?}): {err}\n{}",
        tb.logs()
    );
    println!(
        "FIGURES health round ({count} per target): {:?}",
        started.elapsed()
    );
    (code, v)
}

fn underlay(tb: &Testbed, args: &[&str]) {
    let out = tb.exec_in(Some("underlay"), args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
}

#[test]
fn health_names_a_lossy_node_and_an_isolated_one_and_nothing_when_healthy() {
    if !testbed_usable() {
        return;
    }
    let tb = Testbed::up(3, 1, 'h');
    let all = [
        "host-0", "host-1", "host-2", "pod-0-0", "pod-1-0", "pod-2-0",
    ];
    tb.wait_pods(&all, Duration::from_secs(30));

    let (code, healthy) = health(&tb, "5");
    assert_eq!(code, Some(0), "{healthy}");
    assert_eq!(findings(&healthy), [], "{healthy}");
    assert_eq!(healthy["nodes"], 3);

    underlay(&tb, &["nft", "add", "table", "bridge", "pp_health"]);
    let chain = "add chain bridge pp_health forward { type filter hook forward priority 0; }";
    underlay(&tb, &["nft", chain]);
    for dir in ["iifname", "oifname"] {
        let rule = format!(
            "add rule bridge pp_health forward {dir} \"n2\" ip saddr != {INFRA_IP} \
             ip daddr != {INFRA_IP} {DROP_RULE}"
        );
        underlay(&tb, &["nft", &rule]);
    }
    let (code, lossy) = health(&tb, "20");
    assert_eq!(code, Some(3), "{lossy}");
    assert_eq!(
        findings(&lossy),
        [("lossy".into(), "node-2".into(), None)],
        "{lossy}"
    );
    println!("FIGURES health lossy: {}", lossy["findings"][0]["message"]);
    underlay(&tb, &["nft", "delete", "table", "bridge", "pp_health"]);

    underlay(&tb, &["ip", "link", "set", "n1", "down"]);
    let (code, cut) = health(&tb, "5");
    assert_eq!(code, Some(3), "{cut}");
    assert_eq!(
        findings(&cut),
        [("isolated".into(), "node-1".into(), None)],
        "{cut}"
    );
    println!(
        "FIGURES health link down: {}",
        cut["findings"][0]["message"]
    );
}

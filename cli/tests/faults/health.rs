//! `podperf health` on the netns testbed (3 nodes × 1 pod) with real faults: nothing named on the
//! healthy cluster; 30 % random drop (nftables) on node 2's underlay port → `lossy node-2`;
//! node 1's underlay link down → `isolated node-1`; a one-way block of node 2 → `cannot_send
//! node-2`, and the other way → `unreachable node-2`. Needs root and `ip netns` (skipped, with
//! a message, otherwise). Repeated rounds (healthy and after each fault): [`crate::health_rounds`].

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::testbed::{testbed_usable, Fault, Testbed};

/// (finding, node, peer) of each finding.
pub fn findings(report: &Value) -> Vec<(String, String, Option<String>)> {
    findings_with(report, "peer")
}

/// (finding, node, the field `extra`) of each finding.
pub fn findings_with(report: &Value, extra: &str) -> Vec<(String, String, Option<String>)> {
    report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {report}"))
        .iter()
        .map(|f| {
            (
                f["finding"].as_str().unwrap().to_string(),
                f["node"].as_str().unwrap().to_string(),
                f[extra].as_str().map(String::from),
            )
        })
        .collect()
}

/// `podperf -o json health --count COUNT --interval-ms 20`: exit code and report.
pub fn health(tb: &Testbed, count: &str) -> (Option<i32>, Value) {
    health_with(tb, count, &[])
}

/// [`health`] with more flags.
pub fn health_with(tb: &Testbed, count: &str, more: &[&str]) -> (Option<i32>, Value) {
    let started = Instant::now();
    let mut args = vec!["health", "--count", count, "--interval-ms", "20"];
    args.extend_from_slice(more);
    let (code, v, err) = tb.try_podperf(&args);
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

    // The bridge (underlay) drops 30 % of node 2's frames each way, but not its NATS traffic.
    let drop = Fault::RandomDrop {
        node: 2,
        percent: 30,
    };
    tb.inject(drop);
    let (code, lossy) = health(&tb, "20");
    assert_eq!(code, Some(3), "{lossy}");
    assert_eq!(
        findings(&lossy),
        [("lossy".into(), "node-2".into(), None)],
        "{lossy}"
    );
    println!("FIGURES health lossy: {}", lossy["findings"][0]["message"]);
    tb.clear(drop);

    tb.inject(Fault::LinkDown(1));
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

/// A one-way block of node 2, each way, on the 3-node testbed.
///
/// A sweep round has every worker send echo requests to every other worker; a node pair
/// (source → target) is *down* when none of its requests got a reply. Blocking everything from
/// node 2 (its port's frames out, or its link) would drop its echo replies as well: the probes
/// *to* node 2 would fail too, and node 2 would rightly be `isolated` — not a one-way fault.
/// The directions are told apart by what each one carries: node 2's own probes are requests
/// going out of its port (their replies come in); the others' probes to node 2 are requests
/// coming in (node 2's replies go out). So the switch drops only the echo requests:
///
/// - **entering from node 2's port** (`iifname n2`): node 2's requests to the 2 other nodes die
///   → both of its pairs as a source are down → `cannot_send node-2`; the others' requests
///   reach node 2 and its replies get back → nobody is unreachable; nodes 0 and 1 each miss 1
///   of their 2 incoming pairs (from node 2), not most → not named; node 2's down pairs are not
///   named again one by one (node 2 is). Exactly one finding.
/// - **leaving through node 2's port** (`oifname n2`): the mirror image → `unreachable node-2`.
///
/// Requests between node IPs are plain ICMP on the underlay; those toward or from pods are inside
/// Flannel's VXLAN, matched at their fixed offsets ([`Testbed::inject`]). NATS (TCP) is never
/// touched, so node 2's workers stay in the view and their sweeps report.
#[test]
fn health_names_a_node_blocked_one_way_by_the_direction_that_fails() {
    if !testbed_usable() {
        return;
    }
    let tb = Testbed::up(3, 1, 'o');
    let all = [
        "host-0", "host-1", "host-2", "pod-0-0", "pod-1-0", "pod-2-0",
    ];
    tb.wait_pods(&all, Duration::from_secs(30));
    let (code, healthy) = health(&tb, "5");
    assert_eq!(code, Some(0), "{healthy}");

    for (fault, kind) in [
        (Fault::NoRequestsFrom(2), "cannot_send"),
        (Fault::NoRequestsTo(2), "unreachable"),
    ] {
        tb.inject(fault);
        let (code, report) = health(&tb, "5");
        assert_eq!(code, Some(3), "{fault:?}: {report}");
        assert_eq!(
            findings(&report),
            [(kind.into(), "node-2".into(), None)],
            "{fault:?}: {report}"
        );
        assert_eq!(report["nodes"], 3, "{report}");
        println!(
            "FIGURES health {fault:?}: {}",
            report["findings"][0]["message"]
        );
        tb.clear(fault);
    }
}

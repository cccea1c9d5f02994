//! Scenario 6: inside the netns testbed (`testbed/testbed.sh`, 3 nodes × 1 pod, Flannel VXLAN),
//! node 1's underlay link is set down for a while: jobs toward it fail with a clear reason, its
//! workers leave the view, jobs between the other nodes are unaffected, and everything comes back
//! when the link does. Needs root and `ip netns` (skipped, with a message, otherwise).

use std::time::{Duration, Instant};

use crate::testbed::{testbed_usable, text, Testbed};

#[test]
fn s6_a_nodes_underlay_link_down_fails_jobs_toward_it_and_it_comes_back() {
    if !testbed_usable() {
        return;
    }
    let tb = Testbed::up(3, 1, 'f');
    let all = [
        "host-0", "host-1", "host-2", "pod-0-0", "pod-1-0", "pod-2-0",
    ];
    tb.wait_pods(&all, Duration::from_secs(30));
    let ping = |from: &str, to: &str, count: &str| {
        tb.submit(&["run", "ping", "--from", from, "--to", to, "--count", count])
    };
    // Before: a job from node 1 that will still be running when its link goes.
    let from_n1 = ping("pod-1-0", "pod-2-0", "50");
    std::thread::sleep(Duration::from_millis(1500));

    let cut = tb.exec_in(Some("underlay"), &["ip", "link", "set", "n1", "down"]);
    assert!(cut.status.success(), "{}", text(&cut.stderr));
    let down = Instant::now();
    // Right after the cut node 1 is still in the view: a ping toward it gets no reply.
    let toward_n1 = ping("pod-0-0", "pod-1-0", "5");
    let other = ping("pod-0-0", "pod-2-0", "10");
    tb.wait_pods(
        &["host-0", "host-2", "pod-0-0", "pod-2-0"],
        Duration::from_secs(15),
    );
    let offline_after = down.elapsed();
    let (code, _, err) = tb.try_podperf(&["run", "ping", "--from", "pod-0-0", "--to", "pod-1-0"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("worker_offline"), "{err}");

    let toward = tb.wait_job(&toward_n1, Duration::from_secs(30));
    let from = tb.wait_job(&from_n1, Duration::from_secs(30));
    let unaffected = tb.wait_job(&other, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3)); // down "for a while"

    let up = tb.exec_in(Some("underlay"), &["ip", "link", "set", "n1", "up"]);
    assert!(up.status.success(), "{}", text(&up.stderr));
    let restored = Instant::now();
    let back = tb.wait_pods(&all, Duration::from_secs(60));
    let after = tb.wait_job(&ping("pod-0-0", "pod-1-0", "3"), Duration::from_secs(30));
    println!(
        "FIGURES s6: link down → node-1 workers out of the view {offline_after:?}; ping toward \
         node 1 → {} ({}: {}); ping from node 1 → {} ({}); ping node 0 → node 2 → {} \
         ({}% loss); link up → workers back {back:?}, ping toward node 1 → {} in {:?}",
        toward["state"],
        toward["reason"],
        toward["message"],
        from["state"],
        from["message"],
        unaffected["state"],
        unaffected["result"]["loss_percent"],
        after["state"],
        restored.elapsed()
    );
    assert_eq!(toward["state"], "failed", "{toward}");
    assert_eq!(toward["reason"], "unreachable", "{toward}");
    assert_eq!(from["state"], "worker_lost", "{from}");
    assert_eq!(unaffected["state"], "succeeded", "{unaffected}");
    assert_eq!(unaffected["result"]["loss_percent"], 0.0, "{unaffected}");
    assert_eq!(after["state"], "succeeded", "{after}");
}

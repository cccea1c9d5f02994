//! `--family`: a job aims at the target worker's address of that family, a worker without one is
//! refused (never measured over the other family), and the allow-list takes IPv6 CIDRs.

use std::net::IpAddr;

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A worker on `v4` and, when given, `v6`.
fn dual(id: &str, pod: &str, node: &str, v4: &str, v6: Option<&str>) -> WorkerInfo {
    let mut w = worker(id, pod, node, v4);
    w.pod_ips = std::iter::once(v4).chain(v6).map(ip).collect();
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_picks_the_target_s_address_of_it_or_refuses() {
    let env = Env::start().await;
    let mut a = env
        .register(dual(
            "w-a",
            "pod-a",
            "n1",
            "10.244.1.2",
            Some("fd10:244:1::2"),
        ))
        .await;
    env.register(dual(
        "w-b",
        "pod-b",
        "n2",
        "10.244.2.2",
        Some("fd10:244:2::2"),
    ))
    .await;
    env.register(dual("w-c", "pod-c", "n2", "10.244.2.3", None))
        .await;
    a.listen().await;
    let job = |to: &str, family: Option<&str>| {
        let mut j = json!({"source": "pod-a", "target": {"worker": to},
                           "params": {"kind": "ping", "count": 1}});
        if let Some(f) = family {
            j["family"] = json!(f);
        }
        spec(j)
    };
    for (family, want) in [
        (None, "10.244.2.2"),
        (Some("ipv4"), "10.244.2.2"),
        (Some("ipv6"), "fd10:244:2::2"),
    ] {
        let id = env.api.submit_one(job("pod-b", family)).await.unwrap();
        let run = run_of(a.next_command(SOON).await);
        assert_eq!(run.job_id, id);
        let target = run.target.expect("a resolved target");
        assert_eq!(target.ip, ip(want), "{family:?}");
        assert_eq!(env.api.get(id).await.unwrap().target_ip, Some(ip(want)));
    }

    let err = env
        .api
        .submit_one(job("pod-c", Some("ipv6")))
        .await
        .unwrap_err()
        .api_error()
        .expect("refused");
    assert_eq!(err.code, ErrorCode::InvalidParam, "{err:?}");
    assert_eq!(err.field.as_deref(), Some("jobs[0].family"), "{err:?}");
    assert!(
        err.message
            .contains("worker pod-c has no ipv6 address (its addresses: 10.244.2.3)"),
        "{err:?}"
    );
    // The source needs the family too: its probes bind to it.
    let from_c = spec(json!({"source": "pod-c", "target": {"worker": "pod-b"},
                             "family": "ipv6", "params": {"kind": "ping"}}));
    let err = env.api.submit_one(from_c).await.unwrap_err().api_error();
    let err = err.expect("refused");
    assert!(err.message.contains("pod-c has no ipv6 address"), "{err:?}");
    let mismatch = spec(
        json!({"source": "pod-a", "target": {"address": "10.99.0.1"},
                               "family": "ipv6", "params": {"kind": "ping"}}),
    );
    let err = env.api.submit_one(mismatch).await.unwrap_err().api_error();
    assert_eq!(
        err.expect("refused").field.as_deref(),
        Some("jobs[0].family")
    );
    a.no_command(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_takes_ipv6_cidrs() {
    let cfg = DispatcherConfig {
        allowed_cidrs: vec!["::1/128".parse().unwrap(), "fd00::/8".parse().unwrap()],
        ..test_config()
    };
    let env = Env::start_with(cfg).await;
    let mut w = env
        .register(worker("w1", "pod-1", "n1", "10.244.1.2"))
        .await;
    w.listen().await;
    for inside in ["::1", "fd00::1", "fd10:244:2::2", "fdff:ffff::9"] {
        let id = env
            .api
            .submit_one(spec(
                json!({"source": "pod-1", "target": {"address": inside},
                                    "params": {"kind": "ping", "count": 1}}),
            ))
            .await
            .unwrap_or_else(|e| panic!("{inside}: {e}"));
        let run = run_of(w.next_command(SOON).await);
        assert_eq!((run.job_id, run.target.unwrap().ip), (id, ip(inside)));
    }
    for outside in [
        "::2",
        "fe80::1",
        "2001:db8::1",
        "fc00::1",
        "::ffff:10.99.0.1",
        "10.99.0.1",
    ] {
        let err = env
            .api
            .submit_one(spec(
                json!({"source": "pod-1", "target": {"address": outside},
                                    "params": {"kind": "ping", "count": 1}}),
            ))
            .await
            .unwrap_err()
            .api_error()
            .unwrap_or_else(|| panic!("{outside}: not a refusal"));
        assert_eq!(err.code, ErrorCode::AddressNotAllowed, "{outside}: {err:?}");
        assert!(err.message.contains("::1/128"), "{err:?}");
    }
}

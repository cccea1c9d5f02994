//! A dual-stack worker on loopback (127.0.0.x and `::1`): it advertises both addresses, serves
//! iperf3 on each, and measures toward an IPv6 target with the tools' IPv6 modes (bound to its
//! own IPv6 address). sockperf 3.7 has no IPv6: a `latency` job toward `::1` is a typed failure
//! carrying sockperf's own words, never a silent IPv4 run.

#[allow(unused_imports)] // the harness re-exports helpers other test files use
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use podperf_protocol::command::{JobAssignment, ResolvedTarget};
use podperf_protocol::job::{Iperf3Params, JobParams, LatencyParams, PingParams};
use podperf_protocol::outcome::{FailureReason, OutcomeStatus};
use podperf_protocol::result::ProbeResult;
use uuid::Uuid;

const SECS_15: Duration = Duration::from_secs(15);
const V6: &str = "::1";

fn v6() -> IpAddr {
    V6.parse().unwrap()
}

/// A worker on `v4` and `::1`.
fn dual(v4: &str) -> podperf_worker::WorkerConfig {
    let mut config = test_config(v4);
    config.identity.pod_ips = vec![v4.parse().unwrap(), v6()];
    config
}

fn job(params: JobParams, port: u16) -> JobAssignment {
    JobAssignment {
        job_id: Uuid::now_v7(),
        params,
        target: Some(ResolvedTarget {
            ip: v6(),
            port,
            worker_id: None,
        }),
        deadline_at_ms: in_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_worker_advertises_both_and_measures_over_ipv6() {
    let h = Harness::start().await;
    let client = h.worker_with(dual("127.0.0.71")).await;
    let server = h.worker_with(dual("127.0.0.72")).await;
    let (_, info) = h.wait_registered(&server.id, SECS_15).await;
    assert_eq!(info.pod_ip, server.pod_ip(), "the primary stays first");
    assert_eq!(info.pod_ips, [server.pod_ip(), v6()]);
    let (v4, port) = (server.pod_ip(), server.iperf3_port());
    eventually(
        SECS_15,
        "iperf3 -s listens on both addresses",
        || async move { is_listening(v4, port) && is_listening(v6(), port) },
    )
    .await;

    let iperf3 = JobParams::Iperf3(Iperf3Params {
        duration_s: 1,
        ..Default::default()
    });
    let j = job(iperf3, port);
    h.run_job(&client.id, &j).await;
    let out = h.wait_outcome(j.job_id, SECS_15).await;
    assert_eq!(out.status, OutcomeStatus::Succeeded, "{out:?}");
    let Some(ProbeResult::Iperf3(r)) = &out.result else {
        panic!("{out:?}")
    };
    assert!(r.receiver_bits_per_second > 0.0, "{r:?}");
    let raw = out.raw_output.unwrap_or_default();
    assert!(raw.contains("\"::1\""), "iperf3 connected over IPv6: {raw}");

    let ping = JobParams::Ping(PingParams {
        count: 2,
        ..Default::default()
    });
    let j = job(ping, 0);
    h.run_job(&client.id, &j).await;
    let out = h.wait_outcome(j.job_id, SECS_15).await;
    assert_eq!(out.status, OutcomeStatus::Succeeded, "{out:?}");
    let Some(ProbeResult::Ping(r)) = &out.result else {
        panic!("{out:?}")
    };
    assert_eq!((r.transmitted, r.received), (2, 2), "{r:?}");
    let raw = out.raw_output.unwrap_or_default();
    assert!(raw.contains("--- ::1 ping statistics ---"), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_toward_ipv6_fails_with_sockperf_s_reason() {
    let h = Harness::start().await;
    let client = h.worker_with(dual("127.0.0.73")).await;
    let latency = JobParams::Latency(LatencyParams {
        duration_s: 1,
        ..Default::default()
    });
    let j = job(latency, podperf_testkit::free_port());
    h.run_job(&client.id, &j).await;
    let out = h.wait_outcome(j.job_id, SECS_15).await;
    assert_eq!(out.status, OutcomeStatus::Failed, "{out:?}");
    assert_eq!(out.reason, Some(FailureReason::ToolError), "{out:?}");
    let message = out.message.unwrap_or_default();
    assert!(message.contains("Invalid address"), "{message}");
}

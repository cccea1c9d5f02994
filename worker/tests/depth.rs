//! Kinds `latency` and `mtu` through in-process workers on loopback: the worker's own supervised
//! sockperf servers answer a real `sockperf ping-pong` (TCP and UDP), `tracepath` + the DF ping
//! run as one job, and a refused or unreachable server is a typed failure.

#[allow(unused_imports)] // the harness re-exports helpers other test files use
mod common;

use std::time::Duration;

use common::*;
use podperf_protocol::command::{JobAssignment, ResolvedTarget};
use podperf_protocol::job::{JobParams, LatencyParams, MtuParams, TransportProtocol};
use podperf_protocol::outcome::{FailureReason, OutcomeStatus};
use podperf_protocol::result::ProbeResult;
use uuid::Uuid;

const SECS_30: Duration = Duration::from_secs(30);

fn job(params: JobParams, ip: std::net::IpAddr, port: u16) -> JobAssignment {
    JobAssignment {
        job_id: Uuid::now_v7(),
        params,
        target: Some(ResolvedTarget {
            ip,
            port,
            worker_id: None,
        }),
        deadline_at_ms: in_secs(60),
    }
}

fn latency(protocol: TransportProtocol) -> JobParams {
    JobParams::Latency(LatencyParams {
        protocol,
        duration_s: 1,
        message_size_bytes: 64,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_runs_against_the_targets_own_sockperf_servers() {
    let h = Harness::start().await;
    let client = h.worker("127.0.0.61").await;
    let server = h.worker("127.0.0.62").await;
    let port = server.config.sockperf_port;
    let info = h.worker_entry(&server.id).await.expect("registered");
    let info: podperf_protocol::worker::WorkerInfo = serde_json::from_slice(&info.value).unwrap();
    assert_eq!(info.sockperf_port, port, "the port is advertised");
    eventually(SECS_30, "the sockperf TCP server listens", || async {
        is_listening(server.pod_ip(), port)
    })
    .await;
    for protocol in [TransportProtocol::Tcp, TransportProtocol::Udp] {
        // The UDP server may still be starting: a failed run is retried until one succeeds.
        let mut last = None;
        for _ in 0..10 {
            let j = job(latency(protocol), server.pod_ip(), port);
            h.run_job(&client.id, &j).await;
            let out = h.wait_outcome(j.job_id, SECS_30).await;
            if out.status == OutcomeStatus::Succeeded {
                last = Some(out);
                break;
            }
            last = Some(out);
        }
        let out = last.unwrap();
        assert_eq!(
            out.status,
            OutcomeStatus::Succeeded,
            "{protocol:?}: {out:?}"
        );
        let Some(ProbeResult::Latency(r)) = out.result else {
            panic!("{out:?}")
        };
        assert_eq!(r.protocol, protocol);
        assert!(r.full_round_trip && r.observations > 0);
        assert!(r.rtt_min_ms <= r.rtt_p50_ms && r.rtt_p50_ms <= r.rtt_p99_ms);
        assert!(r.rtt_p99_ms <= r.rtt_max_ms && r.transactions_per_second > 0.0);
        let raw = out.raw_output.unwrap_or_default();
        assert!(raw.contains("avg-rtt"), "the raw report is kept: {raw}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_to_a_port_without_a_server_is_refused() {
    let h = Harness::start().await;
    let client = h.worker("127.0.0.63").await;
    let j = job(
        latency(TransportProtocol::Tcp),
        "127.0.0.64".parse().unwrap(),
        podperf_testkit::free_port(),
    );
    h.run_job(&client.id, &j).await;
    let out = h.wait_outcome(j.job_id, SECS_30).await;
    assert_eq!(out.status, OutcomeStatus::Failed);
    assert_eq!(
        out.reason,
        Some(FailureReason::ConnectionRefused),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtu_traces_and_checks_with_a_df_ping() {
    let h = Harness::start().await;
    let client = h.worker("127.0.0.65").await;
    let j = job(
        JobParams::Mtu(MtuParams { max_hops: 5 }),
        "127.0.0.66".parse().unwrap(),
        0,
    );
    h.run_job(&client.id, &j).await;
    let out = h.wait_outcome(j.job_id, SECS_30).await;
    assert_eq!(out.status, OutcomeStatus::Succeeded, "{out:?}");
    let Some(ProbeResult::Mtu(r)) = out.result else {
        panic!("{out:?}")
    };
    // Loopback's MTU is 65536; tracepath reports the largest IP packet, 65535 bytes.
    assert_eq!(r.path_mtu_bytes, 65_535);
    assert!(r.reached && r.drops.is_empty());
    let df = r.df_ping.expect("the DF ping ran");
    assert_eq!((df.packet_bytes, df.received), (65_535, df.transmitted));
    assert!(!r.black_hole);
    let raw = out.raw_output.unwrap_or_default();
    assert!(
        raw.contains("Resume: pmtu") && raw.contains("--- DF ping ---"),
        "{raw}"
    );
}

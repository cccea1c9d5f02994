//! Job records and run records as the dispatcher stores them, for the tests.

use std::net::IpAddr;

use podperf_protocol::api::JobRecord;
use podperf_protocol::job::{
    Iperf3Params, JobKind, JobParams, NoopParams, PingParams, TracerouteParams, TransportProtocol,
};
use podperf_protocol::outcome::JobState;
use podperf_protocol::result::{
    HopProbe, Iperf3Result, PingResult, ProbeResult, TracerouteHop, TracerouteResult,
};
use podperf_protocol::run::{
    ClassReport, Figures, MatrixRequest, PathClass, RunJob, RunPair, RunRecord,
};
use uuid::Uuid;

const TARGET: &str = "10.0.0.9";

/// A job in `state` with `result`, with the parameters of the result's kind.
pub fn record(state: JobState, result: Option<ProbeResult>) -> JobRecord {
    let params = match &result {
        Some(ProbeResult::Ping(_)) => JobParams::Ping(PingParams::default()),
        Some(ProbeResult::Traceroute(_)) => JobParams::Traceroute(TracerouteParams::default()),
        Some(ProbeResult::Iperf3(r)) => JobParams::Iperf3(Iperf3Params {
            protocol: r.protocol,
            ..Iperf3Params::default()
        }),
        Some(ProbeResult::Latency(r)) => JobParams::Latency(podperf_protocol::job::LatencyParams {
            protocol: r.protocol,
            ..Default::default()
        }),
        Some(ProbeResult::Mtu(_)) => JobParams::Mtu(Default::default()),
        Some(ProbeResult::Noop(_)) | None => JobParams::Noop(NoopParams::default()),
        Some(ProbeResult::Sweep(_)) => JobParams::Sweep(Default::default()),
    };
    JobRecord {
        job_id: Uuid::new_v4(),
        state,
        params,
        source_worker: "w1".into(),
        source_node: None,
        target: None,
        target_ip: Some(TARGET.parse().unwrap()),
        target_worker: None,
        reason: None,
        message: None,
        result,
        raw_output: None,
        created_at_ms: 1,
        deadline_at_ms: 2,
        dispatched_at_ms: None,
        started_at_ms: None,
        finished_at_ms: None,
        attempts: 1,
    }
}

pub fn ping(rtt_avg_ms: Option<f64>, loss_percent: f64) -> ProbeResult {
    ProbeResult::Ping(PingResult {
        target: TARGET.into(),
        transmitted: 4,
        received: 4,
        errors: 0,
        loss_percent,
        rtt_min_ms: rtt_avg_ms,
        rtt_avg_ms,
        rtt_max_ms: rtt_avg_ms,
        rtt_mdev_ms: rtt_avg_ms.map(|_| 0.0),
        replies: Vec::new(),
    })
}

fn iperf3(protocol: TransportProtocol, bits_per_second: f64) -> Iperf3Result {
    Iperf3Result {
        protocol,
        reverse: false,
        streams: 1,
        duration_s: 5.0,
        bytes_sent: 1,
        bytes_received: 1,
        sender_bits_per_second: bits_per_second,
        receiver_bits_per_second: bits_per_second,
        retransmits: None,
        jitter_ms: None,
        lost_packets: None,
        packets: None,
        lost_percent: None,
        cpu_host_percent: None,
        cpu_remote_percent: None,
    }
}

pub fn iperf3_tcp(bits_per_second: f64, retransmits: Option<u64>) -> ProbeResult {
    let r = iperf3(TransportProtocol::Tcp, bits_per_second);
    ProbeResult::Iperf3(Iperf3Result { retransmits, ..r })
}

pub fn iperf3_udp(bits_per_second: f64, jitter_ms: f64, lost_percent: f64) -> ProbeResult {
    ProbeResult::Iperf3(Iperf3Result {
        jitter_ms: Some(jitter_ms),
        lost_percent: Some(lost_percent),
        ..iperf3(TransportProtocol::Udp, bits_per_second)
    })
}

/// `hops` hops, the last one the target's if `reached`.
pub fn traceroute(hops: u8, reached: bool) -> ProbeResult {
    let hop = |ttl: u8| {
        let address: IpAddr = if reached && ttl == hops {
            TARGET.parse().unwrap()
        } else {
            format!("10.1.0.{ttl}").parse().unwrap()
        };
        TracerouteHop {
            ttl,
            probes: vec![HopProbe {
                address: Some(address),
                rtt_ms: Some(0.1),
                annotation: None,
            }],
        }
    };
    ProbeResult::Traceroute(TracerouteResult {
        target: TARGET.into(),
        max_hops: 30,
        reached,
        hops: (1..=hops).map(hop).collect(),
    })
}

/// A pair of `class` from `source` to `target` with one job per record.
pub fn pair(class: PathClass, source: &str, target: &str, records: &[JobRecord]) -> RunPair {
    let jobs = records.iter().enumerate().map(|(i, r)| RunJob {
        job_id: r.job_id,
        kind: r.params.kind(),
        protocol: match &r.params {
            JobParams::Iperf3(p) => Some(p.protocol),
            _ => None,
        },
        sample: i as u32,
    });
    RunPair {
        class,
        family: Default::default(),
        source: source.into(),
        source_pod: format!("pod-{source}"),
        source_node: format!("node-{source}"),
        source_ip: "10.0.0.1".parse().unwrap(),
        target: target.into(),
        target_pod: format!("pod-{target}"),
        target_node: format!("node-{target}"),
        target_ip: TARGET.parse().unwrap(),
        round: 0,
        jobs: jobs.collect(),
    }
}

pub fn run(pairs: Vec<RunPair>) -> RunRecord {
    RunRecord {
        run_id: Uuid::new_v4(),
        created_at_ms: 1_700_000_000_000,
        request: MatrixRequest::default(),
        rounds: 1,
        pairs,
        schedule: None,
        sampling: None,
    }
}

/// A pair's job that has no record yet (not even queued when the report is made).
pub fn unrecorded_job(pair: &mut RunPair) {
    pair.jobs.push(RunJob {
        job_id: Uuid::new_v4(),
        kind: JobKind::Ping,
        protocol: None,
        sample: 99,
    });
}

/// A report's row of `class` with its TCP bandwidth and RTT samples (none: no figure).
pub fn class_row(class: PathClass, bps: &[f64], rtt: &[f64]) -> ClassReport {
    ClassReport {
        class,
        family: Default::default(),
        pairs: 1,
        sampling: None,
        figures: Figures {
            tcp_bits_per_second: crate::stats::spread(bps),
            rtt_avg_ms: crate::stats::spread(rtt),
            ..Figures::default()
        },
    }
}

//! The samples of one pair (or one path class), collected from its jobs' records, and the figures
//! they make.

use podperf_protocol::api::JobRecord;
use podperf_protocol::job::TransportProtocol;
use podperf_protocol::outcome::JobState;
use podperf_protocol::result::ProbeResult;
use podperf_protocol::run::Figures;

use crate::stats::spread;

/// What the succeeded jobs of a pair or class measured, per figure, and how many jobs failed.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    tcp_bps: Vec<f64>,
    retransmits: Vec<f64>,
    rtt: Vec<f64>,
    loss: Vec<f64>,
    hops: Vec<u32>,
    udp_bps: Vec<f64>,
    jitter: Vec<f64>,
    udp_lost: Vec<f64>,
    latency_p50: Vec<f64>,
    latency_p99: Vec<f64>,
    udp_latency_p50: Vec<f64>,
    udp_latency_p99: Vec<f64>,
    path_mtu: Vec<u32>,
    local_mtu: Vec<u32>,
    black_hole: bool,
    failed: u32,
}

impl Samples {
    /// Adds a job's figures if it succeeded; counts it as failed if it ended otherwise. A job
    /// still under way adds nothing.
    pub(crate) fn add(&mut self, rec: &JobRecord) {
        if rec.state.is_terminal() && rec.state != JobState::Succeeded {
            self.failed += 1;
        }
        if rec.state != JobState::Succeeded {
            return;
        }
        match &rec.result {
            Some(ProbeResult::Ping(p)) => {
                self.rtt.extend(p.rtt_avg_ms);
                self.loss.push(p.loss_percent);
            }
            Some(ProbeResult::Iperf3(r)) if r.protocol == TransportProtocol::Tcp => {
                self.tcp_bps.push(r.receiver_bits_per_second);
                self.retransmits.extend(r.retransmits.map(|n| n as f64));
            }
            Some(ProbeResult::Iperf3(r)) => {
                self.udp_bps.push(r.receiver_bits_per_second);
                self.jitter.extend(r.jitter_ms);
                self.udp_lost.extend(r.lost_percent);
            }
            Some(ProbeResult::Latency(l)) if l.protocol == TransportProtocol::Tcp => {
                self.latency_p50.push(l.rtt_p50_ms);
                self.latency_p99.push(l.rtt_p99_ms);
            }
            Some(ProbeResult::Latency(l)) => {
                self.udp_latency_p50.push(l.rtt_p50_ms);
                self.udp_latency_p99.push(l.rtt_p99_ms);
            }
            Some(ProbeResult::Mtu(m)) => {
                self.path_mtu.push(m.path_mtu_bytes);
                self.local_mtu.extend(m.local_mtu_bytes);
                self.black_hole |= m.black_hole;
            }
            // A traceroute that never reached the target has no hop count to report.
            Some(ProbeResult::Traceroute(t)) if t.reached => self.hops.push(t.hop_count() as u32),
            _ => {}
        }
    }

    /// Adds one target's part of a sweep (a mesh run measures RTT and loss with one sweep per
    /// source): its RTT and loss; a sweep that ended otherwise, or a target that never answered,
    /// counts as failed (as a ping without replies does).
    pub(crate) fn add_sweep_target(&mut self, rec: &JobRecord, target_worker: &str) {
        if !rec.state.is_terminal() {
            return;
        }
        let Some(ProbeResult::Sweep(s)) = &rec.result else {
            self.failed += 1;
            return;
        };
        match s.targets.iter().find(|t| t.worker_id == target_worker) {
            Some(t) if t.received > 0 => {
                self.rtt.extend(t.rtt_avg_ms);
                self.loss.push(t.loss_percent);
            }
            _ => self.failed += 1,
        }
    }

    /// The median and spread of each figure; the hop count is the (upper) median of the samples.
    pub(crate) fn figures(&self) -> Figures {
        let mut hops = self.hops.clone();
        hops.sort_unstable();
        Figures {
            tcp_bits_per_second: spread(&self.tcp_bps),
            tcp_retransmits: spread(&self.retransmits),
            rtt_avg_ms: spread(&self.rtt),
            loss_percent: spread(&self.loss),
            hops: hops.get(hops.len() / 2).copied(),
            udp_bits_per_second: spread(&self.udp_bps),
            udp_jitter_ms: spread(&self.jitter),
            udp_lost_percent: spread(&self.udp_lost),
            latency_p50_ms: spread(&self.latency_p50),
            latency_p99_ms: spread(&self.latency_p99),
            udp_latency_p50_ms: spread(&self.udp_latency_p50),
            udp_latency_p99_ms: spread(&self.udp_latency_p99),
            path_mtu_bytes: self.path_mtu.iter().min().copied(),
            local_mtu_bytes: self.local_mtu.iter().max().copied(),
            mtu_black_hole: self.black_hole,
            jobs_failed: self.failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{iperf3_tcp, iperf3_udp, ping, record, traceroute};

    fn figures(records: &[JobRecord]) -> Figures {
        let mut s = Samples::default();
        for r in records {
            s.add(r);
        }
        s.figures()
    }

    #[test]
    fn a_sweep_feeds_the_pair_of_its_target_only() {
        use podperf_protocol::sweep::{SweepResult, SweepTargetResult};
        let t = |w: &str, received: u32, rtt: Option<f64>| SweepTargetResult {
            worker_id: w.into(),
            node: "n2".into(),
            ip: "10.0.0.2".parse().unwrap(),
            host_network: false,
            sent: 4,
            received,
            loss_percent: 100.0 * f64::from(4 - received) / 4.0,
            rtt_min_ms: rtt,
            rtt_avg_ms: rtt,
            rtt_max_ms: rtt,
            duplicates: 0,
        };
        let targets = vec![t("b", 3, Some(0.2)), t("c", 0, None)];
        let rec = record(
            JobState::Succeeded,
            Some(ProbeResult::Sweep(SweepResult { targets })),
        );
        let mut b = Samples::default();
        b.add_sweep_target(&rec, "b");
        let f = b.figures();
        assert_eq!(f.rtt_avg_ms.unwrap().median, 0.2);
        assert_eq!((f.loss_percent.unwrap().median, f.jobs_failed), (25.0, 0));
        let mut c = Samples::default();
        c.add_sweep_target(&rec, "c");
        c.add_sweep_target(&record(JobState::TimedOut, None), "c");
        let f = c.figures();
        assert_eq!((f.rtt_avg_ms, f.jobs_failed), (None, 2));
    }

    #[test]
    fn each_result_feeds_its_figures() {
        let f = figures(&[
            record(JobState::Succeeded, Some(ping(Some(1.5), 0.0))),
            record(JobState::Succeeded, Some(ping(None, 100.0))),
            record(JobState::Succeeded, Some(iperf3_tcp(9e9, Some(4)))),
            record(JobState::Succeeded, Some(iperf3_udp(1e9, 0.02, 0.5))),
            record(JobState::Succeeded, Some(traceroute(3, true))),
        ]);
        let rtt = f.rtt_avg_ms.unwrap();
        assert_eq!(
            (rtt.median, rtt.samples),
            (1.5, 1),
            "a ping without replies has no RTT"
        );
        let loss = f.loss_percent.unwrap();
        assert_eq!(
            (loss.median, loss.samples),
            (50.0, 2),
            "but it has its loss"
        );
        assert_eq!(f.tcp_bits_per_second.unwrap().median, 9e9);
        assert_eq!(f.tcp_retransmits.unwrap().median, 4.0);
        assert_eq!(f.udp_bits_per_second.unwrap().median, 1e9);
        assert_eq!(f.udp_jitter_ms.unwrap().median, 0.02);
        assert_eq!(f.udp_lost_percent.unwrap().median, 0.5);
        assert_eq!(f.hops, Some(3));
        assert_eq!(f.jobs_failed, 0);
    }

    #[test]
    fn failed_jobs_are_counted_and_jobs_under_way_are_not() {
        let ran = Some(iperf3_tcp(9e9, None));
        let f = figures(&[
            record(JobState::Failed, ran.clone()),
            record(JobState::TimedOut, None),
            record(JobState::WorkerLost, None),
            record(JobState::Cancelled, None),
            record(JobState::Running, ran),
            record(JobState::Queued, None),
        ]);
        assert_eq!(f.jobs_failed, 4);
        assert_eq!(
            f.tcp_bits_per_second, None,
            "only succeeded jobs are measured"
        );
        assert_eq!(
            f,
            Figures {
                jobs_failed: 4,
                ..Figures::default()
            }
        );
    }

    #[test]
    fn hops_are_the_median_of_the_traceroutes_that_reached_the_target() {
        let f = figures(&[
            record(JobState::Succeeded, Some(traceroute(2, true))),
            record(JobState::Succeeded, Some(traceroute(5, true))),
            record(JobState::Succeeded, Some(traceroute(4, true))),
            record(JobState::Succeeded, Some(traceroute(30, false))),
        ]);
        assert_eq!(f.hops, Some(4));
        let f = figures(&[
            record(JobState::Succeeded, Some(traceroute(2, true))),
            record(JobState::Succeeded, Some(traceroute(3, true))),
        ]);
        assert_eq!(f.hops, Some(3), "the upper median of an even count");
        assert_eq!(figures(&[]).hops, None);
    }
}

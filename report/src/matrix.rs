//! A matrix run's report: its progress, and its figures per pair and per path class.

use std::collections::{BTreeMap, HashMap};

use podperf_protocol::api::JobRecord;
use podperf_protocol::job::{IpFamily, JobKind};
use podperf_protocol::outcome::JobState;
use podperf_protocol::run::{
    ClassReport, PairReport, PathClass, RunProgress, RunRecord, RunReport, Sampling,
};
use uuid::Uuid;

use crate::overlay::overlay_cost;
use crate::samples::Samples;

/// Builds the report of `run` from its jobs' records (records of other jobs are ignored; a job
/// without a record counts as not done). Pairs keep the run's order; rows come by family (IPv4
/// first) and in [`PathClass`] order, each only if the run has a pair of it — so the overlay
/// cost, the MTU check and the gate read the first family's rows.
pub fn report(run: &RunRecord, records: &[JobRecord]) -> RunReport {
    let by_id: HashMap<Uuid, &JobRecord> = records.iter().map(|r| (r.job_id, r)).collect();
    let mut classes: BTreeMap<(IpFamily, PathClass), (u32, Samples)> = BTreeMap::new();
    let mut pairs = Vec::new();
    let (mut done, mut succeeded) = (0, 0);
    for pair in &run.pairs {
        let mut samples = Samples::default();
        let class = classes.entry((pair.family, pair.class)).or_default();
        class.0 += 1;
        for rec in pair.jobs.iter().filter_map(|j| by_id.get(&j.job_id)) {
            done += u32::from(rec.state.is_terminal());
            succeeded += u32::from(rec.state == JobState::Succeeded);
            if rec.params.kind() == JobKind::Sweep {
                // One sweep serves every pair of its source: take this pair's target only.
                samples.add_sweep_target(rec, &pair.target);
                class.1.add_sweep_target(rec, &pair.target);
                continue;
            }
            samples.add(rec);
            class.1.add(rec);
        }
        pairs.push(PairReport {
            class: pair.class,
            family: pair.family,
            source_pod: pair.source_pod.clone(),
            target_pod: pair.target_pod.clone(),
            source_node: pair.source_node.clone(),
            target_node: pair.target_node.clone(),
            source_ip: pair.source_ip,
            target_ip: pair.target_ip,
            figures: samples.figures(),
            job_ids: pair.jobs.iter().map(|j| j.job_id).collect(),
        });
    }
    let mut classes: Vec<ClassReport> = classes
        .into_iter()
        .map(|((family, class), (n, s))| ClassReport {
            class,
            family,
            pairs: n,
            sampling: None,
            figures: s.figures(),
        })
        .collect();
    for c in &mut classes {
        c.sampling = crate::sampling::row_state(run, c);
    }
    let jobs = run.pairs.iter().map(|p| p.jobs.len() as u32).sum();
    // An automatic run is finished once the dispatcher stopped adding samples.
    let finished = done == jobs && run.sampling != Some(Sampling::Adding);
    let cost = overlay_cost(&classes);
    RunReport {
        progress: RunProgress {
            run_id: run.run_id,
            created_at_ms: run.created_at_ms,
            rounds: run.rounds,
            pairs: run.pairs.len() as u32,
            jobs,
            jobs_done: done,
            jobs_succeeded: succeeded,
            finished,
            schedule: run.schedule.clone(),
        },
        request: run.request.clone(),
        verdict: finished
            .then(|| crate::verdict::verdict(&run.request, cost.as_ref()))
            .flatten(),
        overlay_cost: cost,
        mtu_problems: crate::mtu::mtu_problems(&classes),
        sampling: crate::sampling::run_state(&classes),
        classes,
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{iperf3_tcp, pair, ping, record, run, traceroute, unrecorded_job};
    use podperf_protocol::run::RunPair;

    fn ok(result: podperf_protocol::result::ProbeResult) -> JobRecord {
        record(JobState::Succeeded, Some(result))
    }

    /// Two pod pairs across nodes, one on one node, one node pair; one job failed, one running.
    fn measured() -> (RunRecord, Vec<JobRecord>) {
        let same = vec![ok(ping(Some(0.1), 0.0)), ok(iperf3_tcp(20e9, Some(0)))];
        let cross_a = vec![ok(ping(Some(0.6), 0.0)), ok(iperf3_tcp(8e9, Some(3)))];
        let cross_b = vec![
            ok(ping(Some(0.4), 0.0)),
            ok(iperf3_tcp(10e9, Some(1))),
            record(JobState::Failed, None),
        ];
        let node = vec![
            ok(traceroute(1, true)),
            ok(ping(Some(0.3), 0.0)),
            ok(iperf3_tcp(10e9, Some(0))),
            record(JobState::Running, None),
        ];
        let run = run(vec![
            pair(PathClass::PodCrossNode, "a", "c", &cross_a),
            pair(PathClass::PodSameNode, "a", "b", &same),
            pair(PathClass::NodeToNode, "n1", "n2", &node),
            pair(PathClass::PodCrossNode, "b", "c", &cross_b),
        ]);
        let other = record(JobState::Failed, None);
        let records = [same, cross_a, cross_b, node, vec![other]].concat();
        (run, records)
    }

    #[test]
    fn progress_counts_the_run_s_jobs_only() {
        let (run, records) = measured();
        let p = report(&run, &records).progress;
        assert_eq!((p.run_id, p.rounds, p.pairs), (run.run_id, 1, 4));
        assert_eq!((p.jobs, p.jobs_done, p.jobs_succeeded), (11, 10, 9));
        assert!(!p.finished, "one job is running");
    }

    #[test]
    fn a_job_without_a_record_is_not_done() {
        let (mut run, mut records) = measured();
        records.retain(|r| r.state != JobState::Running);
        run.pairs[2].jobs.pop();
        assert!(report(&run, &records).progress.finished);
        unrecorded_job(&mut run.pairs[0]);
        let p = report(&run, &records).progress;
        assert_eq!((p.jobs, p.jobs_done, p.finished), (11, 10, false));
    }

    #[test]
    fn pairs_keep_the_run_s_order_and_classes_aggregate_their_pairs() {
        let (run, records) = measured();
        let r = report(&run, &records);
        let pods: Vec<_> = r
            .pairs
            .iter()
            .map(|p| (p.source_pod.as_str(), p.class))
            .collect();
        assert_eq!(
            pods,
            [
                ("pod-a", PathClass::PodCrossNode),
                ("pod-a", PathClass::PodSameNode),
                ("pod-n1", PathClass::NodeToNode),
                ("pod-b", PathClass::PodCrossNode),
            ]
        );
        assert_eq!(r.pairs[3].figures.jobs_failed, 1);
        assert_eq!(r.pairs[2].figures.hops, Some(1));
        for (pair, planned) in r.pairs.iter().zip(&run.pairs) {
            let ids: Vec<Uuid> = planned.jobs.iter().map(|j| j.job_id).collect();
            assert!(!ids.is_empty());
            assert_eq!(pair.job_ids, ids, "each pair links to its own jobs");
        }
        let classes: Vec<_> = r.classes.iter().map(|c| (c.class, c.pairs)).collect();
        assert_eq!(
            classes,
            [
                (PathClass::PodSameNode, 1),
                (PathClass::PodCrossNode, 2),
                (PathClass::NodeToNode, 1),
            ]
        );
        let cross = &r.classes[1].figures;
        let bw = cross.tcp_bits_per_second.as_ref().unwrap();
        assert_eq!((bw.median, bw.min, bw.max, bw.samples), (9e9, 8e9, 10e9, 2));
        assert_eq!(cross.rtt_avg_ms.as_ref().unwrap().median, 0.5);
        assert_eq!(cross.jobs_failed, 1);
        assert_eq!(r.request, run.request);
    }

    #[test]
    fn a_run_over_both_families_has_a_row_per_family_and_its_cost_from_ipv4() {
        let (mut run, records) = measured();
        let v6: Vec<_> = run
            .pairs
            .iter()
            .map(|p| RunPair {
                family: IpFamily::Ipv6,
                ..p.clone()
            })
            .collect();
        // IPv6 first in the run: the rows still come IPv4 first.
        run.pairs = [v6, run.pairs].concat();
        let r = report(&run, &records);
        let rows: Vec<_> = r.classes.iter().map(|c| (c.family, c.class)).collect();
        assert_eq!(
            rows,
            [
                (IpFamily::Ipv4, PathClass::PodSameNode),
                (IpFamily::Ipv4, PathClass::PodCrossNode),
                (IpFamily::Ipv4, PathClass::NodeToNode),
                (IpFamily::Ipv6, PathClass::PodSameNode),
                (IpFamily::Ipv6, PathClass::PodCrossNode),
                (IpFamily::Ipv6, PathClass::NodeToNode),
            ]
        );
        assert_eq!(r.pairs[0].family, IpFamily::Ipv6);
        assert_eq!(r.classes[4].figures, r.classes[1].figures);
        assert_eq!(r.overlay_cost.unwrap().bandwidth_ratio, Some(0.9));
    }

    #[test]
    fn the_overlay_cost_compares_the_cross_node_class_with_the_node_class() {
        let (run, records) = measured();
        let cost = report(&run, &records).overlay_cost.unwrap();
        assert_eq!(cost.bandwidth_ratio, Some(0.9));
        assert_eq!(cost.rtt_ratio, Some(0.5 / 0.3));
    }

    #[test]
    fn a_run_without_records_reports_its_pairs_without_figures() {
        let (run, _) = measured();
        let r = report(&run, &[]);
        assert_eq!((r.progress.jobs_done, r.progress.finished), (0, false));
        assert_eq!(r.pairs.len(), 4);
        assert!(r.classes.iter().all(|c| c.figures == Default::default()));
    }

    #[test]
    fn an_automatic_run_is_finished_once_sampling_is_done_and_then_has_its_verdict() {
        let (mut run, mut records) = measured();
        records.retain(|r| r.state != JobState::Running);
        run.pairs[2].jobs.pop();
        run.request.tolerance_percent = Some(5.0);
        run.sampling = Some(Sampling::Adding);
        let r = report(&run, &records);
        assert!(!r.progress.finished, "samples may still be added");
        assert_eq!(r.verdict, None, "no verdict before the end");
        assert_eq!(
            r.sampling,
            Some(podperf_protocol::run::SamplingState::Sampling)
        );
        run.sampling = Some(Sampling::Done);
        let r = report(&run, &records);
        assert!(r.progress.finished);
        // 9 Gbit/s across nodes against 10 on the nodes: 10 % below, beyond 5 %.
        let v = r.verdict.unwrap();
        assert_eq!(v.status, podperf_protocol::run::VerdictStatus::Fail);
        assert!((v.checks[0].measured.unwrap() - 10.0).abs() < 1e-9);
    }
}

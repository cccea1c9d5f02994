//! `--samples auto`: where each row's sampling stands, and how many samples to add next.
//!
//! A row (path class) has converged when each of its sampled figures ([`Figures::sampled`]:
//! TCP bandwidth, RTT, TCP latency p50) has a 95 % confidence interval of the mean whose
//! half-width is within [`CONVERGED_HALF_WIDTH`] of the mean. Until then the dispatcher adds
//! samples to every pair of the row, in steps sized from the interval's width (it narrows
//! with √n), up to the request's `samples_auto_max` ([`SAMPLES_AUTO_MAX`] by default).
//!
//! [`Figures::sampled`]: podperf_protocol::run::Figures::sampled

use podperf_protocol::job::JobKind;
use podperf_protocol::run::{
    ClassReport, PathClass, RunRecord, Sampling, SamplingState, CONVERGED_HALF_WIDTH,
    SAMPLES_AUTO_MAX,
};

/// Samples planned so far for the pairs of `class`: one more than the highest sample number of
/// a sampled job (a ping, iperf3, latency test or sweep).
pub fn samples_planned(run: &RunRecord, class: PathClass) -> u32 {
    run.pairs
        .iter()
        .filter(|p| p.class == class)
        .flat_map(|p| &p.jobs)
        .filter(|j| !matches!(j.kind, JobKind::Traceroute | JobKind::Mtu))
        .map(|j| j.sample + 1)
        .max()
        .unwrap_or(0)
}

/// Where the sampling of `row` stands (`None` unless the run samples automatically).
pub fn row_state(run: &RunRecord, row: &ClassReport) -> Option<SamplingState> {
    let adding = run.sampling? == Sampling::Adding;
    let mut sampled = row.figures.sampled().peekable();
    Some(
        if sampled.peek().is_some() && sampled.all(|s| s.converged()) {
            SamplingState::Converged
        } else if samples_planned(run, row.class) >= run.request.samples_auto_max {
            SamplingState::BoundReached
        } else if adding {
            SamplingState::Sampling
        } else {
            SamplingState::Stopped
        },
    )
}

/// The run's sampling from its rows': still sampling, else stopped, else bound reached if any
/// row reached it, else converged.
pub fn run_state(rows: &[ClassReport]) -> Option<SamplingState> {
    let states: Vec<SamplingState> = rows.iter().filter_map(|r| r.sampling).collect();
    let any = |s| states.contains(&s);
    if states.is_empty() {
        None
    } else if any(SamplingState::Sampling) {
        Some(SamplingState::Sampling)
    } else if any(SamplingState::Stopped) {
        Some(SamplingState::Stopped)
    } else if any(SamplingState::BoundReached) {
        Some(SamplingState::BoundReached)
    } else {
        Some(SamplingState::Converged)
    }
}

/// The rows to sample more, and how many samples to add to each of their pairs: enough that the
/// widest interval would shrink to the target (the half-width goes with 1/√n), at least one, at
/// most as many as it has (doubling), and never beyond the request's bound. Only rows still
/// `sampling` are named.
pub fn more_samples(run: &RunRecord, rows: &[ClassReport]) -> Vec<(PathClass, u32)> {
    rows.iter()
        .filter(|r| r.sampling == Some(SamplingState::Sampling))
        .map(|r| {
            let n = samples_planned(run, r.class).max(1);
            let wanted = r
                .figures
                .sampled()
                .map(|s| match s.ci95_relative() {
                    Some(rel) => {
                        let ratio = rel / CONVERGED_HALF_WIDTH;
                        (f64::from(n) * ratio * ratio).ceil().min(1e6) as u32
                    }
                    None => 2 * n,
                })
                .max()
                .unwrap_or(2 * n);
            let add = wanted.saturating_sub(n).clamp(1, n);
            let bound = run.request.samples_auto_max.min(SAMPLES_AUTO_MAX);
            (r.class, add.min(bound.saturating_sub(n)))
        })
        .filter(|(_, add)| *add > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{class_row, pair, run};
    use crate::stats::spread;
    use podperf_protocol::run::RunJob;
    use uuid::Uuid;

    fn auto_run(class: PathClass, samples: u32, sampling: Sampling) -> RunRecord {
        let mut p = pair(class, "a", "b", &[]);
        p.jobs = (0..samples)
            .map(|sample| RunJob {
                job_id: Uuid::new_v4(),
                kind: JobKind::Iperf3,
                protocol: None,
                sample,
            })
            .chain([RunJob {
                job_id: Uuid::new_v4(),
                kind: JobKind::Mtu,
                protocol: None,
                sample: 0,
            }])
            .collect();
        let mut r = run(vec![p]);
        r.sampling = Some(sampling);
        r
    }

    fn row(class: PathClass, bps: &[f64]) -> ClassReport {
        class_row(class, bps, &[])
    }

    const WIDE: &[f64] = &[8e9, 10e9, 12e9];
    const TIGHT: &[f64] = &[9.99e9, 10e9, 10.01e9];

    #[test]
    fn a_row_converges_when_every_sampled_interval_is_within_5_percent() {
        let run = auto_run(PathClass::PodCrossNode, 3, Sampling::Adding);
        let state = |bps| row_state(&run, &row(PathClass::PodCrossNode, bps));
        assert_eq!(state(TIGHT), Some(SamplingState::Converged));
        assert_eq!(state(WIDE), Some(SamplingState::Sampling));
        assert_eq!(
            state(&[]),
            Some(SamplingState::Sampling),
            "nothing measured yet"
        );
        let mut mixed = row(PathClass::PodCrossNode, TIGHT);
        mixed.figures.rtt_avg_ms = spread(&[0.1, 0.2, 0.3]);
        assert_eq!(row_state(&run, &mixed), Some(SamplingState::Sampling));
    }

    #[test]
    fn the_bound_the_end_of_adding_and_fixed_runs() {
        let wide = row(PathClass::PodCrossNode, WIDE);
        let at_bound = auto_run(PathClass::PodCrossNode, SAMPLES_AUTO_MAX, Sampling::Adding);
        assert_eq!(
            row_state(&at_bound, &wide),
            Some(SamplingState::BoundReached)
        );
        let done = auto_run(PathClass::PodCrossNode, 3, Sampling::Done);
        assert_eq!(row_state(&done, &wide), Some(SamplingState::Stopped));
        let mut fixed = auto_run(PathClass::PodCrossNode, 3, Sampling::Done);
        fixed.sampling = None;
        assert_eq!(row_state(&fixed, &wide), None);
    }

    #[test]
    fn the_request_s_bound() {
        let wide = row(PathClass::PodCrossNode, WIDE);
        let mut run = auto_run(PathClass::PodCrossNode, 4, Sampling::Adding);
        run.request.samples_auto_max = 5;
        let mut row = wide.clone();
        row.sampling = row_state(&run, &wide);
        assert_eq!(more_samples(&run, &[row]), [(PathClass::PodCrossNode, 1)]);
        run.request.samples_auto_max = 4;
        assert_eq!(row_state(&run, &wide), Some(SamplingState::BoundReached));
    }

    #[test]
    fn the_run_s_state_from_its_rows() {
        let with = |states: &[SamplingState]| {
            let rows: Vec<ClassReport> = states
                .iter()
                .map(|s| ClassReport {
                    sampling: Some(*s),
                    ..row(PathClass::PodSameNode, &[])
                })
                .collect();
            run_state(&rows)
        };
        use SamplingState::*;
        assert_eq!(with(&[Converged, Converged]), Some(Converged));
        assert_eq!(with(&[Converged, BoundReached]), Some(BoundReached));
        assert_eq!(with(&[BoundReached, Sampling]), Some(Sampling));
        assert_eq!(with(&[Stopped, BoundReached]), Some(Stopped));
        assert_eq!(with(&[]), None);
    }

    #[test]
    fn more_samples_are_sized_from_the_width_and_bounded() {
        let run = auto_run(PathClass::PodCrossNode, 3, Sampling::Adding);
        let mut wide = row(PathClass::PodCrossNode, WIDE);
        wide.sampling = row_state(&run, &wide);
        // ±49.7 % at n = 3 would need ~300 samples: the step doubles n.
        assert_eq!(
            more_samples(&run, &[wide.clone()]),
            [(PathClass::PodCrossNode, 3)]
        );
        let run = auto_run(PathClass::PodCrossNode, 18, Sampling::Adding);
        assert_eq!(
            more_samples(&run, &[wide]),
            [(PathClass::PodCrossNode, 2)],
            "to 20"
        );
        let mut near = row(PathClass::PodCrossNode, &[9.5e9, 10e9, 10.5e9, 10e9]);
        near.sampling = Some(SamplingState::Sampling);
        // ±6.5 % at n = 4: 4 × 1.3² ≈ 6.8, so 7 samples: 3 more.
        let run = auto_run(PathClass::PodCrossNode, 4, Sampling::Adding);
        assert_eq!(more_samples(&run, &[near]), [(PathClass::PodCrossNode, 3)]);
        let mut tight = row(PathClass::PodCrossNode, TIGHT);
        tight.sampling = row_state(&run, &tight);
        assert!(more_samples(&run, &[tight]).is_empty());
    }
}

//! `--samples auto`: the loop that adds samples to a matrix run until each row's 95 % confidence
//! intervals are within 5 % of their means, or the bound is reached (`podperf_report::sampling`
//! decides; this module waits, plans the jobs and stores the run).
//!
//! It lives in the dispatcher, not in the CLI, so every way of starting a run (the CLI, the web
//! UI, a schedule) samples the same, and a client that stops following a run does not stop it.
//! The replica that accepted the run drives it; should that replica stop, `runs.get` ends the
//! run with the samples it has once its jobs have been done for [`STALLED_AFTER`] ([`stalled`]).

use std::collections::HashMap;
use std::time::Duration;

use podperf_connect::ErrorChain;
use podperf_protocol::api::{ApiError, JobRecord};
use podperf_protocol::job::{bounds, JobSpec, Target};
use podperf_protocol::now_ms;
use podperf_protocol::run::{PathClass, RunJob, RunRecord, RunReport, Sampling};
use podperf_report::{more_samples, report, samples_planned};
use uuid::Uuid;

use crate::api::Api;
use crate::runs::{run_job, sample_params, seconds};

/// How often the loop reads the run while its jobs run.
const POLL: Duration = Duration::from_millis(500);

/// A run whose jobs have all been done this long while it is still marked as adding samples has
/// lost the replica that drove it.
pub const STALLED_AFTER: Duration = Duration::from_secs(30);

/// Drives `run_id` in a task of its own until its sampling is done.
pub(crate) fn spawn(api: Api, run_id: Uuid) {
    tokio::spawn(async move { drive(&api, run_id).await });
}

/// Whether `run` still says it adds samples although every job ended more than
/// [`STALLED_AFTER`] before `now_ms`.
pub fn stalled(run: &RunRecord, records: &[JobRecord], now_ms: u64) -> bool {
    if run.sampling != Some(Sampling::Adding) {
        return false;
    }
    // When each job ended (one pass over the records, not one per job).
    let ended: HashMap<Uuid, u64> = records
        .iter()
        .filter(|r| r.state.is_terminal())
        .map(|r| (r.job_id, r.finished_at_ms.unwrap_or(0)))
        .collect();
    let mut last = 0;
    for id in run.job_ids() {
        match ended.get(&id) {
            Some(t) => last = last.max(*t),
            None => return false,
        }
    }
    now_ms.saturating_sub(last) > STALLED_AFTER.as_millis() as u64
}

async fn drive(api: &Api, run_id: Uuid) {
    loop {
        let Some((run, report)) = wait_for_jobs(api, run_id).await else {
            return;
        };
        let more = more_samples(&run, &report.classes);
        if more.is_empty() {
            break;
        }
        match api.add_samples(&run, &more).await {
            Ok(n) => tracing::info!(%run_id, jobs = n, ?more, "samples added"),
            Err(err) => {
                tracing::warn!(%run_id, %err, "cannot add samples: the run ends with those it has");
                break;
            }
        }
    }
    finish(api, run_id).await;
}

/// Reads the run until every job of it has ended; `None` when the run is gone.
async fn wait_for_jobs(api: &Api, run_id: Uuid) -> Option<(RunRecord, RunReport)> {
    loop {
        match api.load_run(run_id).await {
            Ok((run, records)) => {
                let r = report(&run, &records);
                if r.progress.jobs_done == r.progress.jobs {
                    return Some((run, r));
                }
            }
            Err(err) if err.code == podperf_protocol::api::ErrorCode::NotFound => return None,
            Err(err) => tracing::warn!(%run_id, %err, "cannot read the run; retrying"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Marks the run's sampling done (retried while the store is unavailable, for as long as
/// `runs.get` would wait before ending the run itself).
async fn finish(api: &Api, run_id: Uuid) {
    let give_up = tokio::time::Instant::now() + STALLED_AFTER;
    loop {
        let stored = async {
            let Some(mut run) = api.store.get_run(run_id).await? else {
                return Ok(());
            };
            run.sampling = Some(Sampling::Done);
            api.store.put_run(&run).await
        };
        match stored.await {
            Ok(()) => return tracing::info!(%run_id, "sampling done"),
            Err(err) if tokio::time::Instant::now() < give_up => {
                tracing::warn!(%run_id, err = %ErrorChain(&err), "cannot store the run; retrying");
                tokio::time::sleep(POLL).await;
            }
            Err(err) => {
                return tracing::warn!(%run_id, err = %ErrorChain(&err), "cannot store the run")
            }
        }
    }
}

impl Api {
    /// Adds `more` samples to every pair of the named rows: their jobs admitted and accepted
    /// with the run stored again. Returns how many jobs were added.
    async fn add_samples(
        &self,
        run: &RunRecord,
        more: &[(PathClass, u32)],
    ) -> Result<usize, ApiError> {
        let now = now_ms();
        let req = &run.request;
        let mut run = run.clone();
        let added: HashMap<PathClass, (u32, u32)> = more
            .iter()
            .map(|(class, add)| {
                let from = samples_planned(&run, *class);
                (*class, (from, from + add))
            })
            .collect();
        // Deadline: every round of the run, one after the other, for the samples added.
        let most = more.iter().map(|(_, add)| *add).max().unwrap_or(0);
        let one = seconds(sample_params(req, 0).iter().map(|(_, p)| p));
        let round_s = one * u64::from(most) * u64::from(run.rounds.max(1));
        let timeout_s = (round_s * 2 + 60).min(u64::from(bounds::TIMEOUT_S_MAX)) as u32;
        let mut jobs = Vec::new();
        for pair in run.pairs.iter_mut() {
            let Some((from, to)) = added.get(&pair.class) else {
                continue;
            };
            for sample in *from..*to {
                for (sample, params) in sample_params(req, sample) {
                    let spec = JobSpec {
                        family: Some(pair.family),
                        source: pair.source.clone(),
                        target: Some(Target::Worker(pair.target.clone())),
                        params: params.clone(),
                        timeout_s: Some(timeout_s),
                    };
                    let job = self.admit(&spec, &[], now)?;
                    pair.jobs.push(run_job(job.job_id, &params, sample));
                    jobs.push(job);
                }
            }
        }
        if req.mesh {
            jobs.extend(self.more_sweeps(&mut run, &added, now)?);
        }
        let n = jobs.len();
        self.accept(jobs, Some(&run)).await?;
        Ok(n)
    }

    /// A mesh's RTT and loss for the samples added: per source and added sample one sweep
    /// toward its targets in the rows sampled more, linked to each of those pairs.
    fn more_sweeps(
        &self,
        run: &mut RunRecord,
        added: &HashMap<PathClass, (u32, u32)>,
        now: u64,
    ) -> Result<Vec<crate::store::NewJob>, ApiError> {
        let (from, to) = added
            .values()
            .fold((u32::MAX, 0), |(f, t), (a, b)| (f.min(*a), t.max(*b)));
        let sampled = |class: &PathClass| added.contains_key(class);
        let pairs: Vec<(String, String)> = run
            .pairs
            .iter()
            .filter(|p| sampled(&p.class))
            .map(|p| (p.source.clone(), p.target.clone()))
            .collect();
        let (jobs, ids) = self.mesh_sweeps(
            &run.request,
            pairs.iter().map(|(s, t)| (s.as_str(), t.clone())),
            from..to,
            now,
        )?;
        for pair in run.pairs.iter_mut().filter(|p| sampled(&p.class)) {
            for (sample, job_id) in ids.get(&pair.source).into_iter().flatten() {
                pair.jobs.push(RunJob {
                    job_id: *job_id,
                    kind: podperf_protocol::job::JobKind::Sweep,
                    protocol: None,
                    sample: *sample,
                });
            }
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podperf_protocol::job::JobKind;
    use podperf_protocol::run::{MatrixRequest, RunPair};

    fn record(job_id: Uuid, state: &str, finished_at_ms: Option<u64>) -> JobRecord {
        let mut v = serde_json::json!({
            "job_id": job_id, "state": state, "params": {"kind": "noop"},
            "source_worker": "w1", "created_at_ms": 0, "deadline_at_ms": 1,
        });
        if let Some(t) = finished_at_ms {
            v["finished_at_ms"] = t.into();
        }
        serde_json::from_value(v).unwrap()
    }

    fn run(ids: &[Uuid], sampling: Option<Sampling>) -> RunRecord {
        let jobs = ids
            .iter()
            .map(|id| RunJob {
                job_id: *id,
                kind: JobKind::Noop,
                protocol: None,
                sample: 0,
            })
            .collect();
        RunRecord {
            run_id: Uuid::now_v7(),
            created_at_ms: 0,
            request: MatrixRequest::default(),
            rounds: 1,
            schedule: None,
            pairs: vec![RunPair {
                class: PathClass::PodCrossNode,
                family: Default::default(),
                source: "a".into(),
                source_pod: "a".into(),
                source_node: "n1".into(),
                source_ip: "10.0.0.1".parse().unwrap(),
                target: "b".into(),
                target_pod: "b".into(),
                target_node: "n2".into(),
                target_ip: "10.0.0.2".parse().unwrap(),
                round: 0,
                jobs,
            }],
            sampling,
        }
    }

    #[test]
    fn a_run_is_stalled_once_every_job_ended_long_enough_ago_while_still_adding() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let after = STALLED_AFTER.as_millis() as u64;
        let ended = [
            record(a, "succeeded", Some(1_000)),
            record(b, "failed", Some(2_000)),
        ];
        let adding = run(&[a, b], Some(Sampling::Adding));
        assert!(
            !stalled(&adding, &ended, 2_000 + after),
            "not longer than the wait"
        );
        assert!(stalled(&adding, &ended, 2_001 + after));
        let running = [ended[0].clone(), record(b, "running", None)];
        assert!(
            !stalled(&adding, &running, u64::MAX),
            "a job is still running"
        );
        assert!(
            !stalled(&adding, &ended[..1], u64::MAX),
            "a job has no record yet"
        );
        assert!(!stalled(
            &run(&[a, b], Some(Sampling::Done)),
            &ended,
            u64::MAX
        ));
        assert!(!stalled(&run(&[a, b], None), &ended, u64::MAX));
    }
}

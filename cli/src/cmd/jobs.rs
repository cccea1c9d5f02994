//! `podperf jobs`: jobs, newest first, filtered by state and worker.

use std::process::ExitCode;

use clap::ValueEnum;
use podperf_protocol::api::{ListJobsReply, ListJobsRequest};
use podperf_protocol::outcome::JobState;

use super::{print, Ctx};

#[derive(Debug, clap::Args)]
pub struct Jobs {
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// A worker (id, pod name or unique prefix), as source or target.
    #[arg(long)]
    worker: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

impl Jobs {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let req = ListJobsRequest {
            state: self.state.map(Into::into),
            worker: self.worker,
            limit: Some(self.limit),
            ..Default::default()
        };
        let reply: ListJobsReply = ctx.client.list_page(&req).await?;
        let names = ctx.names().await;
        print(&ctx.out().jobs(&reply, &names))?;
        if reply.truncated {
            eprintln!(
                "note: {} jobs shown, fewer than --limit {}: the list was cut to fit one NATS \
                 message (large sweep records); narrow it with --state or --worker",
                reply.jobs.len(),
                self.limit
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Job states as they are printed (`timed_out`, `worker_lost`). Both conversions are exhaustive
/// matches, so a state added to the protocol does not compile until it is added here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StateArg {
    Queued,
    Dispatched,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    WorkerLost,
    Cancelled,
}

impl From<StateArg> for JobState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Queued => JobState::Queued,
            StateArg::Dispatched => JobState::Dispatched,
            StateArg::Running => JobState::Running,
            StateArg::Succeeded => JobState::Succeeded,
            StateArg::Failed => JobState::Failed,
            StateArg::TimedOut => JobState::TimedOut,
            StateArg::WorkerLost => JobState::WorkerLost,
            StateArg::Cancelled => JobState::Cancelled,
        }
    }
}

impl From<JobState> for StateArg {
    fn from(s: JobState) -> Self {
        match s {
            JobState::Queued => StateArg::Queued,
            JobState::Dispatched => StateArg::Dispatched,
            JobState::Running => StateArg::Running,
            JobState::Succeeded => StateArg::Succeeded,
            JobState::Failed => StateArg::Failed,
            JobState::TimedOut => StateArg::TimedOut,
            JobState::WorkerLost => StateArg::WorkerLost,
            JobState::Cancelled => StateArg::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed_name(s: StateArg) -> String {
        s.to_possible_value().unwrap().get_name().to_string()
    }

    #[test]
    fn every_job_state_maps_from_exactly_one_flag_value_of_the_same_name() {
        for state in JobState::ALL {
            let from: Vec<StateArg> = StateArg::value_variants()
                .iter()
                .copied()
                .filter(|a| JobState::from(*a) == state)
                .collect();
            assert_eq!(from, [StateArg::from(state)], "{state}");
            assert_eq!(typed_name(from[0]), state.as_str());
            assert_eq!(state.to_string(), state.as_str(), "printed as typed");
        }
        assert_eq!(StateArg::value_variants().len(), JobState::ALL.len());
    }

    #[test]
    fn every_flag_value_round_trips_and_parses_by_its_printed_name() {
        for &arg in StateArg::value_variants() {
            let state = JobState::from(arg);
            assert_eq!(StateArg::from(state), arg);
            assert_eq!(StateArg::from_str(state.as_str(), false), Ok(arg));
            let wire = serde_json::to_value(state).unwrap();
            assert_eq!(wire.as_str(), Some(typed_name(arg).as_str()));
        }
    }
}

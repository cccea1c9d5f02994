//! Schedules: a sweep round or a matrix run started again and again (`podperf schedule …`,
//! `podperf.api.schedules.*`, `/api/v2/schedules`). The leading dispatcher runs them with
//! perfSONAR's semantics: each start is randomised within the jitter after its due time, a run
//! that overruns makes the next one slip (never two runs of one schedule at once), and every run
//! is an ordinary run (`podperf runs`) tagged with its schedule's name.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::FieldError;
use crate::run::MatrixRequest;

/// The JetStream KV bucket holding one key per schedule (key = its name).
pub const SCHEDULES_BUCKET: &str = "podperf-schedules";

/// API endpoints, relative to `podperf.api` (see [`crate::names::API_PREFIX`]).
pub mod endpoint {
    pub const SCHEDULES_ADD: &str = "schedules.add";
    pub const SCHEDULES_LIST: &str = "schedules.list";
    pub const SCHEDULES_RM: &str = "schedules.rm";
    pub const SCHEDULES_PAUSE: &str = "schedules.pause";
    pub const SCHEDULES_RESUME: &str = "schedules.resume";
    /// Every schedules endpoint.
    pub const ALL: [&str; 5] = [
        SCHEDULES_ADD,
        SCHEDULES_LIST,
        SCHEDULES_RM,
        SCHEDULES_PAUSE,
        SCHEDULES_RESUME,
    ];
}

/// Bounds of a schedule.
pub mod bounds {
    /// The shortest period the dispatcher accepts by default (`PODPERF_SCHEDULE_MIN_EVERY_MS`
    /// lowers it, down to [`EVERY_MS_FLOOR`], for tests).
    pub const EVERY_MS_MIN: u64 = 10_000;
    /// No period is ever shorter than this, whatever the dispatcher's setting.
    pub const EVERY_MS_FLOOR: u64 = 1_000;
    /// The longest period: a week.
    pub const EVERY_MS_MAX: u64 = 7 * 24 * 3600 * 1000;
    /// The largest jitter, as a fraction of the period.
    pub const JITTER_MAX: f64 = 0.5;
    /// The longest name.
    pub const NAME_MAX: usize = 64;
    /// Schedules one system holds.
    pub const SCHEDULES_MAX: usize = 100;
}

/// What a schedule runs: `{"sweep": {…}}` or `{"matrix": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledRun {
    /// A sweep round as `podperf sweep` makes it: one fping sweep per source worker, all at once.
    Sweep(SweepRound),
    /// A matrix run as `podperf matrix` starts it.
    Matrix(MatrixRequest),
}

/// A sweep round's options (`podperf sweep`'s flags). An omitted field takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SweepRound {
    /// Echo requests per target, 1..=100.
    pub count: u32,
    /// Time between two requests to one target, 20..=10,000 ms.
    pub interval_ms: u32,
    /// Only these source workers (names as for single targets); empty: every live worker.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    /// Only these targets; empty: every live worker but the source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

impl Default for SweepRound {
    fn default() -> Self {
        SweepRound {
            count: 5,
            interval_ms: 100,
            from: Vec::new(),
            to: Vec::new(),
        }
    }
}

impl SweepRound {
    /// The sweep job `source` runs in this round: toward `to`, or every live worker.
    pub fn spec(&self, source: String) -> crate::job::JobSpec {
        use crate::sweep::{SweepParams, SweepTargets};
        let targets = if self.to.is_empty() {
            SweepTargets::All
        } else {
            SweepTargets::Workers(self.to.clone())
        };
        crate::job::JobSpec {
            family: None,
            source,
            target: None,
            params: crate::job::JobParams::Sweep(SweepParams {
                targets,
                count: self.count,
                interval_ms: self.interval_ms,
                resolved: vec![],
            }),
            timeout_s: None,
        }
    }
}

/// `schedules.add`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddScheduleRequest {
    /// 1–64 of `[A-Za-z0-9_-]`, unique.
    pub name: String,
    /// The period, milliseconds.
    pub every_ms: u64,
    /// Each start is drawn uniformly in `[due, due + jitter × every]`; 0..=0.5.
    #[serde(default)]
    pub jitter: f64,
    /// No run starts after this time (ms since the epoch); the schedule is then `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    pub run: ScheduledRun,
}

/// `schedules.rm`, `schedules.pause`, `schedules.resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleNameRequest {
    pub name: String,
}

/// `schedules.list` (no parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSchedulesRequest {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListSchedulesReply {
    /// Ordered by name.
    pub schedules: Vec<Schedule>,
}

/// A schedule as stored (and listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub every_ms: u64,
    pub jitter: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    pub run: ScheduledRun,
    #[serde(default)]
    pub paused: bool,
    pub created_at_ms: u64,
    /// The next due time (on the grid `created + k × every`, slipped past a run that overran).
    pub next_due_ms: u64,
    /// The next start: the due time plus this round's random jitter.
    pub next_start_ms: u64,
    /// The run in progress, if any (at most one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Runs started so far.
    #[serde(default)]
    pub runs: u64,
    /// Filled in when listed.
    #[serde(default)]
    pub status: ScheduleStatus,
}

/// A schedule's state as listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    /// Waiting for its next start.
    #[default]
    Waiting,
    /// A run is in progress.
    Running,
    Paused,
    /// Past `until`: no run will start any more.
    Expired,
}

impl ScheduleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::Waiting => "waiting",
            ScheduleStatus::Running => "running",
            ScheduleStatus::Paused => "paused",
            ScheduleStatus::Expired => "expired",
        }
    }
}

impl Schedule {
    /// The status at `now`.
    pub fn status_at(&self, now: u64) -> ScheduleStatus {
        if self.running.is_some() {
            ScheduleStatus::Running
        } else if self
            .until_ms
            .is_some_and(|u| self.next_start_ms > u || now > u)
        {
            ScheduleStatus::Expired
        } else if self.paused {
            ScheduleStatus::Paused
        } else {
            ScheduleStatus::Waiting
        }
    }

    /// The first due time on the grid `created + k × every` strictly after `now` (a run that
    /// cannot start on time slips to it instead of piling up).
    pub fn slot_after(&self, due: u64, now: u64) -> u64 {
        if due > now {
            return due;
        }
        let every = self.every_ms.max(1);
        due + ((now - due) / every + 1) * every
    }

    /// `jitter × every`: the width of the window a start is drawn in.
    pub fn jitter_window_ms(&self) -> u64 {
        (self.jitter * self.every_ms as f64) as u64
    }
}

/// The last run a schedule started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRun {
    /// The run (`podperf runs ID`); none when it could not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    /// The due time it was started for.
    pub due_at_ms: u64,
    pub started_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<u64>,
    pub outcome: RunOutcome,
    /// Why it did not start, or how many jobs failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a scheduled run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Running,
    /// Every job succeeded.
    Succeeded,
    /// Some job did not.
    Failed,
    /// The run was refused (no workers, `busy`, …).
    NotStarted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::NotStarted => "not_started",
        }
    }
}

/// Whether `name` may name a schedule: 1–64 of `[A-Za-z0-9_-]` (a KV key and a URL segment).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= bounds::NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a name.
pub fn check_name(name: &str) -> Result<(), FieldError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        let msg = format!(
            "{name:?} is not a schedule name: 1–{} of A–Z, a–z, 0–9, '-' and '_'",
            bounds::NAME_MAX
        );
        Err(FieldError::new("name", msg))
    }
}

impl AddScheduleRequest {
    /// Checks the name, the period (at least `min_every_ms`), the jitter, `until` (after `now`)
    /// and a sweep's options; a matrix request is checked by the dispatcher as `runs.start` does.
    pub fn validate(&self, min_every_ms: u64, now: u64) -> Result<(), FieldError> {
        use bounds::*;
        check_name(&self.name)?;
        let min = min_every_ms.max(EVERY_MS_FLOOR);
        if self.every_ms < min || self.every_ms > EVERY_MS_MAX {
            let msg = format!(
                "{} ms is out of bounds ({min}..={EVERY_MS_MAX} ms)",
                self.every_ms
            );
            return Err(FieldError::new("every_ms", msg));
        }
        if !(0.0..=JITTER_MAX).contains(&self.jitter) {
            let msg = format!("{} is out of bounds (0..={JITTER_MAX})", self.jitter);
            return Err(FieldError::new("jitter", msg));
        }
        if let Some(until) = self.until_ms {
            if until <= now {
                return Err(FieldError::new("until_ms", "lies in the past"));
            }
        }
        if let ScheduledRun::Sweep(s) = &self.run {
            let params = crate::sweep::SweepParams {
                count: s.count,
                interval_ms: s.interval_ms,
                ..Default::default()
            };
            params.validate().map_err(|e| {
                let field = e.field.trim_start_matches("params.");
                FieldError::new(format!("run.sweep.{field}"), e.message)
            })?;
            for (what, names) in [("from", &s.from), ("to", &s.to)] {
                if names.len() > crate::sweep::bounds::SWEEP_TARGETS_MAX {
                    let msg = format!("{} workers named; too many", names.len());
                    return Err(FieldError::new(format!("run.sweep.{what}"), msg));
                }
                if let Some(i) = names.iter().position(String::is_empty) {
                    let field = format!("run.sweep.{what}[{i}]");
                    return Err(FieldError::new(field, "must name a worker"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(every_ms: u64, jitter: f64) -> AddScheduleRequest {
        AddScheduleRequest {
            name: "mesh".into(),
            every_ms,
            jitter,
            until_ms: None,
            run: ScheduledRun::Sweep(SweepRound::default()),
        }
    }

    #[test]
    fn bounds_are_checked() {
        let min = bounds::EVERY_MS_MIN;
        assert!(add(min, 0.5).validate(min, 0).is_ok());
        assert_eq!(
            add(min - 1, 0.0).validate(min, 0).unwrap_err().field,
            "every_ms"
        );
        let week = bounds::EVERY_MS_MAX + 1;
        assert_eq!(
            add(week, 0.0).validate(min, 0).unwrap_err().field,
            "every_ms"
        );
        // A lower setting never goes below the floor.
        assert_eq!(add(999, 0.0).validate(1, 0).unwrap_err().field, "every_ms");
        for bad in [-0.1, 0.51, f64::NAN] {
            assert_eq!(add(min, bad).validate(min, 0).unwrap_err().field, "jitter");
        }
        let mut r = add(min, 0.0);
        r.until_ms = Some(5);
        assert_eq!(r.validate(min, 5).unwrap_err().field, "until_ms");
        r.name = "a.b".into();
        assert_eq!(r.validate(min, 0).unwrap_err().field, "name");
        let mut r = add(min, 0.0);
        r.run = ScheduledRun::Sweep(SweepRound {
            count: 0,
            ..Default::default()
        });
        assert_eq!(r.validate(min, 0).unwrap_err().field, "run.sweep.count");
    }

    #[test]
    fn a_late_due_time_slips_to_the_next_slot() {
        let s = Schedule {
            name: "x".into(),
            every_ms: 10,
            jitter: 0.0,
            until_ms: None,
            run: ScheduledRun::Sweep(SweepRound::default()),
            paused: false,
            created_at_ms: 0,
            next_due_ms: 0,
            next_start_ms: 0,
            running: None,
            last_run: None,
            runs: 0,
            status: ScheduleStatus::Waiting,
        };
        assert_eq!(s.slot_after(30, 20), 30);
        assert_eq!(s.slot_after(30, 30), 40);
        assert_eq!(s.slot_after(30, 57), 60);
    }

    #[test]
    fn requests_parse() {
        let r: AddScheduleRequest = serde_json::from_str(
            r#"{"name":"m","every_ms":60000,"jitter":0.1,"run":{"matrix":{"samples":1}}}"#,
        )
        .unwrap();
        assert!(matches!(r.run, ScheduledRun::Matrix(ref m) if m.samples == 1));
        let r: AddScheduleRequest =
            serde_json::from_str(r#"{"name":"s","every_ms":60000,"run":{"sweep":{}}}"#).unwrap();
        assert_eq!(r.run, ScheduledRun::Sweep(SweepRound::default()));
        assert!(serde_json::from_str::<AddScheduleRequest>(
            r#"{"name":"s","every_ms":1,"run":{"sweep":{}},"x":1}"#
        )
        .is_err());
    }
}

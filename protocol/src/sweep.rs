//! Sweeps: one source worker probes many targets in one job with `fping` (a full mesh of latency
//! in N jobs instead of N²). The parameters, the targets the dispatcher resolves, and the result.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::job::FieldError;

/// Bounds of a sweep's parameters.
pub mod bounds {
    /// Echo requests per target.
    pub const SWEEP_COUNT_MAX: u32 = 100;
    /// fping's `-p` (time between two requests to one target).
    pub const SWEEP_INTERVAL_MS_MIN: u32 = 20;
    pub const SWEEP_INTERVAL_MS_MAX: u32 = 10_000;
    /// Targets of one sweep: every worker of a 1,000-node cluster with a pod and a host worker
    /// per node, while the assignment and the result stay well inside NATS's 1 MB messages.
    pub const SWEEP_TARGETS_MAX: usize = 2000;
}

/// `fping -c count -p interval_ms` toward every target. An omitted field takes its value from
/// [`Default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SweepParams {
    /// Whom to probe: named workers or every live worker.
    pub targets: SweepTargets,
    /// Echo requests per target, 1..=100.
    pub count: u32,
    /// Time between two requests to one target, 20..=10,000 ms.
    pub interval_ms: u32,
    /// The targets as the dispatcher resolved them at admission (filled by the dispatcher; a
    /// submitted job must leave it empty). The worker probes exactly these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<SweepTarget>,
}

impl Default for SweepParams {
    fn default() -> Self {
        SweepParams {
            targets: SweepTargets::All,
            count: 5,
            interval_ms: 100,
            resolved: Vec::new(),
        }
    }
}

/// The targets of a sweep as submitted: `"all"` or `{"workers": ["w1", "pod-b", …]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepTargets {
    /// Every live worker but the source itself.
    #[default]
    All,
    /// These workers (ids, pod names, or unique prefixes, as for single targets).
    Workers(Vec<String>),
}

/// One target as the dispatcher resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepTarget {
    pub worker_id: String,
    pub node: String,
    pub ip: IpAddr,
    /// The target worker shares its node's network namespace (written only when true: a
    /// 1,000-node sweep carries this for every target).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
}

impl SweepParams {
    /// Checks the bounds and the target list (not whether the workers are live).
    pub fn validate(&self) -> Result<(), FieldError> {
        use bounds::*;
        crate::job::check("count", self.count, 1, SWEEP_COUNT_MAX)?;
        crate::job::check(
            "interval_ms",
            self.interval_ms,
            SWEEP_INTERVAL_MS_MIN,
            SWEEP_INTERVAL_MS_MAX,
        )?;
        if let SweepTargets::Workers(names) = &self.targets {
            if names.is_empty() {
                return Err(FieldError::new(
                    "params.targets.workers",
                    "name at least one worker (or \"all\")",
                ));
            }
            if names.len() > SWEEP_TARGETS_MAX {
                let msg = format!("{} targets; at most {SWEEP_TARGETS_MAX}", names.len());
                return Err(FieldError::new("params.targets.workers", msg));
            }
            if let Some(i) = names.iter().position(String::is_empty) {
                return Err(FieldError::new(
                    format!("params.targets.workers[{i}]"),
                    "must name a worker",
                ));
            }
        }
        if self.resolved.len() > SWEEP_TARGETS_MAX {
            let msg = format!(
                "{} targets; at most {SWEEP_TARGETS_MAX}",
                self.resolved.len()
            );
            return Err(FieldError::new("params.resolved", msg));
        }
        Ok(())
    }
}

/// What one sweep measured, target by target (in the order of the resolved targets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub targets: Vec<SweepTargetResult>,
}

/// fping's summary for one target. Compact on purpose: sweeps run continuously.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepTargetResult {
    pub worker_id: String,
    pub node: String,
    pub ip: IpAddr,
    /// Written only when true, as in [`SweepTarget`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// Echo requests sent.
    pub sent: u32,
    /// Echo replies received (duplicates not counted).
    pub received: u32,
    /// Share of requests without a reply, 0–100.
    pub loss_percent: f64,
    /// Absent when no reply came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
    /// Duplicate replies fping saw (a looping or misbehaving path).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub duplicates: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobParams, JobSpec};

    fn spec(json: &str) -> Result<JobSpec, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn wire_format_of_targets() {
        let s = spec(r#"{"source":"w1","params":{"kind":"sweep","targets":"all"}}"#).unwrap();
        assert_eq!(s.params, JobParams::Sweep(SweepParams::default()));
        s.validate().unwrap();
        let s = spec(
            r#"{"source":"w1","params":{"kind":"sweep","targets":{"workers":["a","b"]},"count":3}}"#,
        )
        .unwrap();
        let JobParams::Sweep(p) = &s.params else {
            panic!("{s:?}")
        };
        assert_eq!(
            p.targets,
            SweepTargets::Workers(vec!["a".into(), "b".into()])
        );
        assert_eq!(p.count, 3);
        assert!(spec(r#"{"source":"w1","params":{"kind":"sweep","targets":"some"}}"#).is_err());
    }

    #[test]
    fn bounds_name_the_field() {
        let field = |p: SweepParams| JobParams::Sweep(p).validate().unwrap_err().field;
        let d = SweepParams::default;
        assert_eq!(field(SweepParams { count: 0, ..d() }), "params.count");
        assert_eq!(field(SweepParams { count: 101, ..d() }), "params.count");
        let fast = SweepParams {
            interval_ms: 19,
            ..d()
        };
        assert_eq!(field(fast), "params.interval_ms");
        let none = SweepParams {
            targets: SweepTargets::Workers(vec![]),
            ..d()
        };
        assert_eq!(field(none), "params.targets.workers");
        let many = SweepParams {
            targets: SweepTargets::Workers(vec!["w".into(); 2001]),
            ..d()
        };
        assert_eq!(field(many), "params.targets.workers");
        let blank = SweepParams {
            targets: SweepTargets::Workers(vec!["w".into(), String::new()]),
            ..d()
        };
        assert_eq!(field(blank), "params.targets.workers[1]");
    }

    #[test]
    fn a_sweep_takes_no_single_target() {
        let s = spec(
            r#"{"source":"w1","target":{"worker":"w2"},"params":{"kind":"sweep","targets":"all"}}"#,
        )
        .unwrap();
        assert_eq!(s.validate().unwrap_err().field, "target");
    }
}

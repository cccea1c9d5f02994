//! A job's record: the part fixed at submission ([`NewJob`]) as it is stored (JSON in the hash's
//! `record` field), and a job's hash read back as a [`JobRecord`].

use std::collections::HashMap;
use std::net::IpAddr;

use podperf_protocol::api::JobRecord;
use podperf_protocol::command;
use podperf_protocol::job::{JobParams, Target};
use podperf_protocol::outcome::JobState;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Result, StoreError};

/// The part of a job fixed at submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StoredJob", try_from = "StoredJob")]
pub struct NewJob {
    pub job_id: Uuid,
    pub params: JobParams,
    pub source_worker: String,
    /// Node of the source worker (the scheduler's unit).
    pub source_node: String,
    /// The target as submitted (a worker name or an address).
    pub target: Option<Target>,
    /// Where the probe aims, resolved at admission; `None` for kinds without a target.
    pub resolved: Option<ResolvedTarget>,
    pub created_at_ms: u64,
    pub deadline_at_ms: u64,
}

/// A job's target as resolved at admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub ip: IpAddr,
    /// The iperf3 server's port.
    pub port: u16,
    /// Set when the target is a worker.
    pub worker: Option<String>,
    /// The target worker's node, or `addr:<ip>` for an address (the scheduler's unit).
    pub node: String,
}

impl NewJob {
    /// The worker the job aims at, if it aims at one.
    pub fn target_worker(&self) -> Option<&str> {
        self.resolved.as_ref()?.worker.as_deref()
    }
}

impl From<&ResolvedTarget> for command::ResolvedTarget {
    fn from(t: &ResolvedTarget) -> Self {
        command::ResolvedTarget {
            ip: t.ip,
            port: t.port,
            worker_id: t.worker.clone(),
        }
    }
}

/// A [`NewJob`] as the `record` field holds it (JSON): the resolved target's fields flat, as
/// dispatchers have always written them, so records written before a restart read back.
#[derive(Serialize, Deserialize)]
struct StoredJob {
    job_id: Uuid,
    params: JobParams,
    source_worker: String,
    source_node: String,
    target: Option<Target>,
    target_node: Option<String>,
    target_ip: Option<IpAddr>,
    target_port: Option<u16>,
    target_worker: Option<String>,
    created_at_ms: u64,
    deadline_at_ms: u64,
}

impl From<NewJob> for StoredJob {
    fn from(j: NewJob) -> Self {
        let r = j.resolved;
        StoredJob {
            job_id: j.job_id,
            params: j.params,
            source_worker: j.source_worker,
            source_node: j.source_node,
            target: j.target,
            target_ip: r.as_ref().map(|r| r.ip),
            target_port: r.as_ref().map(|r| r.port),
            target_node: r.as_ref().map(|r| r.node.clone()),
            target_worker: r.and_then(|r| r.worker),
            created_at_ms: j.created_at_ms,
            deadline_at_ms: j.deadline_at_ms,
        }
    }
}

impl TryFrom<StoredJob> for NewJob {
    type Error = String;

    fn try_from(s: StoredJob) -> std::result::Result<Self, String> {
        let resolved = match (s.target_ip, s.target_port, s.target_node) {
            (None, _, _) => None,
            (Some(ip), Some(port), Some(node)) => Some(ResolvedTarget {
                ip,
                port,
                worker: s.target_worker,
                node,
            }),
            (Some(ip), ..) => return Err(format!("target {ip} without its port or node")),
        };
        Ok(NewJob {
            job_id: s.job_id,
            params: s.params,
            source_worker: s.source_worker,
            source_node: s.source_node,
            target: s.target,
            resolved,
            created_at_ms: s.created_at_ms,
            deadline_at_ms: s.deadline_at_ms,
        })
    }
}

/// A job's hash as a record.
pub(super) fn decode(id: &str, mut map: HashMap<String, String>) -> Result<JobRecord> {
    let corrupt = |message: String| StoreError::Corrupt {
        job_id: id.to_string(),
        message,
    };
    let record = map
        .remove("record")
        .ok_or_else(|| corrupt("no record".into()))?;
    let mut job: NewJob = serde_json::from_str(&record).map_err(|e| corrupt(e.to_string()))?;
    if let JobParams::Sweep(p) = &mut job.params {
        // The targets as resolved are the dispatcher's (a 1,000-node sweep's list is ≈ 100 KB);
        // a caller reads them, with what was measured, in the result.
        p.resolved = Vec::new();
    }
    let state = map.get("state").and_then(|s| JobState::parse(s));
    let state = state.ok_or_else(|| corrupt("bad state".into()))?;
    let num = |k: &str| map.get(k).and_then(|v| v.parse::<u64>().ok());
    fn json_field<T: serde::de::DeserializeOwned>(
        map: &HashMap<String, String>,
        k: &str,
    ) -> Option<T> {
        map.get(k).and_then(|v| serde_json::from_str(v).ok())
    }
    let (target_ip, target_worker) = match job.resolved {
        Some(t) => (Some(t.ip), t.worker),
        None => (None, None),
    };
    Ok(JobRecord {
        job_id: job.job_id,
        state,
        params: job.params,
        source_worker: job.source_worker,
        source_node: Some(job.source_node),
        target: job.target,
        target_ip,
        target_worker,
        reason: json_field(&map, "reason"),
        message: map.get("message").cloned(),
        result: json_field(&map, "result"),
        raw_output: map.get("raw_output").cloned(),
        created_at_ms: job.created_at_ms,
        deadline_at_ms: job.deadline_at_ms,
        dispatched_at_ms: num("dispatched_at_ms"),
        started_at_ms: num("started_at_ms"),
        finished_at_ms: num("finished_at_ms"),
        attempts: num("attempts").unwrap_or(0) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use podperf_protocol::job::PingParams;

    fn job(resolved: Option<ResolvedTarget>) -> NewJob {
        NewJob {
            job_id: Uuid::now_v7(),
            params: JobParams::Ping(PingParams::default()),
            source_worker: "w1".into(),
            source_node: "n1".into(),
            target: resolved.as_ref().map(|t| Target::Address(t.ip)),
            resolved,
            created_at_ms: 1,
            deadline_at_ms: 2,
        }
    }

    #[test]
    fn the_record_keeps_the_flat_target_fields_dispatchers_wrote_before() {
        let target = ResolvedTarget {
            ip: "10.0.0.7".parse().unwrap(),
            port: 5201,
            worker: Some("w2".into()),
            node: "n2".into(),
        };
        let with = job(Some(target));
        let v = serde_json::to_value(&with).unwrap();
        assert_eq!(v["target_ip"], "10.0.0.7");
        assert_eq!(v["target_port"], 5201);
        assert_eq!(v["target_worker"], "w2");
        assert_eq!(v["target_node"], "n2");
        assert_eq!(v["source_node"], "n1");
        assert_eq!(serde_json::from_value::<NewJob>(v).unwrap(), with);

        let without = job(None);
        let v = serde_json::to_value(&without).unwrap();
        assert!(v["target_ip"].is_null() && v["target_node"].is_null());
        assert_eq!(serde_json::from_value::<NewJob>(v).unwrap(), without);
    }

    #[test]
    fn a_target_address_without_its_port_is_corrupt() {
        let mut v = serde_json::to_value(job(None)).unwrap();
        v["target_ip"] = "10.0.0.7".into();
        let err = serde_json::from_value::<NewJob>(v).unwrap_err();
        assert!(err.to_string().contains("10.0.0.7"), "{err}");
    }
}

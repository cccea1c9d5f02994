//! Jobs: the part fixed at submission ([`NewJob`]), inserted as `queued`, read back one by one,
//! many at once, or a page at a time through the indexes.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use podperf_protocol::api::{JobRecord, ListJobsRequest};
use podperf_protocol::command;
use podperf_protocol::job::{JobParams, Target};
use podperf_protocol::outcome::JobState;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{keys, Result, Store, StoreError};

/// How often inserts trim the indexes to the retention window.
const TRIM_EVERY_MS: u64 = 60_000;

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

impl Store {
    /// Stores a batch of new (queued) jobs atomically.
    pub async fn insert(&self, jobs: &[NewJob]) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let ttl = self.retention_s() as i64;
        for job in jobs {
            let key = keys::job(job.job_id);
            let record = serde_json::to_string(job).expect("job serialises");
            let id = job.job_id.to_string();
            let score = job.created_at_ms;
            pipe.hset_multiple(
                &key,
                &[
                    ("state", JobState::Queued.as_str().to_string()),
                    ("source_worker", job.source_worker.clone()),
                    ("created_at_ms", score.to_string()),
                    ("record", record),
                    ("attempts", "0".into()),
                ],
            )
            .ignore()
            .expire(&key, ttl)
            .ignore()
            .zadd(keys::ALL_JOBS, &id, score)
            .ignore()
            .zadd(keys::state_index(JobState::Queued), &id, score)
            .ignore()
            .zadd(keys::worker_index(&job.source_worker), &id, score)
            .ignore()
            .sadd(keys::ACTIVE, &id)
            .ignore();
            if let Some(t) = job.target_worker() {
                pipe.zadd(keys::worker_index(t), &id, score).ignore();
            }
        }
        let workers: BTreeSet<&str> = jobs
            .iter()
            .flat_map(|j| std::iter::once(j.source_worker.as_str()).chain(j.target_worker()))
            .collect();
        for w in &workers {
            // A gone worker's index goes with its jobs.
            pipe.expire(keys::worker_index(w), ttl).ignore();
        }
        self.trim_indexes(&mut pipe, workers);
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Adds to `pipe` the trimming of the indexes to the retention window: not per-batch work,
    /// once a minute.
    fn trim_indexes(&self, pipe: &mut redis::Pipeline, workers: BTreeSet<&str>) {
        let now = podperf_protocol::now_ms();
        let last = self.last_trim_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < TRIM_EVERY_MS {
            return;
        }
        self.last_trim_ms.store(now, Ordering::Relaxed);
        let horizon = now.saturating_sub(self.retention.as_millis() as u64);
        let indexes = [keys::ALL_JOBS.to_string()]
            .into_iter()
            .chain(JobState::ALL.iter().map(|s| keys::state_index(*s)))
            .chain(workers.into_iter().map(keys::worker_index));
        for index in indexes {
            pipe.zrembyscore(index, 0, horizon as f64).ignore();
        }
    }

    pub async fn get(&self, job_id: Uuid) -> Result<Option<JobRecord>> {
        let map: HashMap<String, String> = self.conn.clone().hgetall(keys::job(job_id)).await?;
        if map.is_empty() {
            return Ok(None);
        }
        decode(&job_id.to_string(), map).map(Some)
    }

    /// Many jobs at once, without their raw output (for reports); missing jobs are skipped.
    pub async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<JobRecord>> {
        const FIELDS: [&str; 9] = [
            "record",
            "state",
            "attempts",
            "dispatched_at_ms",
            "started_at_ms",
            "finished_at_ms",
            "reason",
            "message",
            "result",
        ];
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HMGET").arg(keys::job(*id)).arg(&FIELDS[..]);
            }
            let rows: Vec<Vec<Option<String>>> = pipe.query_async(&mut self.conn.clone()).await?;
            for (id, row) in chunk.iter().zip(rows) {
                let map: HashMap<String, String> = FIELDS
                    .iter()
                    .zip(row)
                    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
                    .collect();
                if map.contains_key("record") {
                    out.push(decode(&id.to_string(), map)?);
                }
            }
        }
        Ok(out)
    }

    /// The fixed part of a job (what a restarted dispatcher needs to resume it).
    pub async fn get_new_job(&self, job_id: Uuid) -> Result<Option<(NewJob, JobState)>> {
        let (record, state): (Option<String>, Option<String>) = self
            .conn
            .clone()
            .hmget(keys::job(job_id), &["record", "state"])
            .await?;
        let (Some(record), Some(state)) = (record, state) else {
            return Ok(None);
        };
        let corrupt = |message: String| StoreError::Corrupt {
            job_id: job_id.to_string(),
            message,
        };
        let job = serde_json::from_str(&record).map_err(|e| corrupt(e.to_string()))?;
        let state = JobState::parse(&state).ok_or_else(|| corrupt(format!("state {state}")))?;
        Ok(Some((job, state)))
    }

    /// Ids of every job not yet terminal.
    pub async fn active(&self) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = self.conn.clone().smembers(keys::ACTIVE).await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    /// Drops an id from the active set (its hash expired or vanished).
    pub async fn forget_active(&self, job_id: Uuid) -> Result<()> {
        self.conn
            .clone()
            .srem::<_, _, ()>(keys::ACTIVE, job_id.to_string())
            .await?;
        Ok(())
    }

    /// Jobs matching `q`, newest first.
    pub async fn list(&self, q: &ListJobsRequest) -> Result<Vec<JobRecord>> {
        let limit = q.limit.unwrap_or(100).clamp(1, 1000) as isize;
        let index = match (&q.worker, q.state) {
            (Some(w), _) => keys::worker_index(w),
            (None, Some(s)) => keys::state_index(s),
            (None, None) => keys::ALL_JOBS.to_string(),
        };
        let max = q.until_ms.map_or_else(|| "+inf".into(), |u| u.to_string());
        let min = q.since_ms.map_or_else(|| "-inf".into(), |s| s.to_string());
        // With both a worker and a state, the worker's index is read page by page and filtered.
        let page = if q.worker.is_some() && q.state.is_some() {
            limit * 10
        } else {
            limit
        };
        let mut out = Vec::new();
        let mut offset = 0;
        while (out.len() as isize) < limit {
            let ids: Vec<String> = self
                .conn
                .clone()
                .zrevrangebyscore_limit(&index, &max, &min, offset, page)
                .await?;
            if ids.is_empty() {
                break;
            }
            offset += ids.len() as isize;
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(keys::job_str(id));
            }
            let maps: Vec<HashMap<String, String>> =
                pipe.query_async(&mut self.conn.clone()).await?;
            for (id, map) in ids.iter().zip(maps) {
                if map.is_empty() {
                    continue; // expired
                }
                let rec = decode(id, map)?;
                if q.state.is_none_or(|s| s == rec.state) && (out.len() as isize) < limit {
                    out.push(rec);
                }
            }
            if (ids.len() as isize) < page {
                break;
            }
        }
        Ok(out)
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
    let job: NewJob = serde_json::from_str(&record).map_err(|e| corrupt(e.to_string()))?;
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

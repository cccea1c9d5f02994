//! The queryable job store in Redis. Keys (all under `podperf:`):
//! - `podperf:job:<id>` — hash: `state`, `source_worker`, `record` (the fixed part, JSON),
//!   `attempts`, `*_at_ms`, `reason`, `message`, `result`, `raw_output`; expires after retention.
//! - `podperf:jobs` / `podperf:jobs:state:<state>` / `podperf:jobs:worker:<id>` — sorted sets of job
//!   ids by creation time (ms), trimmed to the retention window.
//! - `podperf:jobs:active` — set of non-terminal job ids (what a restarted dispatcher resumes).
//! - `podperf:latest:<source>:<target>:<kind>` — id of the newest succeeded job for that pair.
//! - `podperf:workers:known` — hash worker id → last worker info seen (tells offline from unknown).
//! - `podperf:run:<id>` — a matrix run (JSON), `podperf:runs` — run ids by creation time.
//!
//! State changes go through one Lua script that never moves a job backwards and never changes a
//! terminal job: the first terminal state wins. (A late `dispatched` after `running` still
//! records its fields — attempts, dispatch time — without moving the state.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use podperf_protocol::api::{JobRecord, ListJobsRequest};
use podperf_protocol::job::{JobParams, Target};
use podperf_protocol::outcome::{FailureReason, JobState};
use podperf_protocol::result::ProbeResult;
use podperf_protocol::run::RunRecord;
use podperf_protocol::worker::WorkerInfo;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ALL_JOBS: &str = "podperf:jobs";
const ACTIVE: &str = "podperf:jobs:active";
const KNOWN_WORKERS: &str = "podperf:workers:known";
const RUNS: &str = "podperf:runs";
/// How often inserts trim the indexes to the retention window.
const TRIM_EVERY_MS: u64 = 60_000;

fn job_key(id: Uuid) -> String {
    format!("podperf:job:{id}")
}
fn state_key(state: JobState) -> String {
    format!("podperf:jobs:state:{state}")
}
fn worker_key(worker: &str) -> String {
    format!("podperf:jobs:worker:{worker}")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("corrupt job record {job_id}: {message}")]
    Corrupt { job_id: String, message: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The part of a job fixed at submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub job_id: Uuid,
    pub params: JobParams,
    pub source_worker: String,
    /// Node of the source worker (the scheduler's unit).
    pub source_node: String,
    pub target: Option<Target>,
    /// Node of the target worker, or `addr:<ip>` for an address target.
    pub target_node: Option<String>,
    pub target_ip: Option<IpAddr>,
    pub target_port: Option<u16>,
    pub target_worker: Option<String>,
    pub created_at_ms: u64,
    pub deadline_at_ms: u64,
}

/// A change of state, with the fields that come with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transition {
    pub state: Option<JobState>,
    pub attempts: Option<u32>,
    pub dispatched_at_ms: Option<u64>,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    pub reason: Option<FailureReason>,
    pub message: Option<String>,
    pub result: Option<ProbeResult>,
    pub raw_output: Option<String>,
    /// Only apply when the job's source worker is this one (results from the wrong worker).
    pub expect_worker: Option<String>,
}

impl Transition {
    pub fn to(state: JobState) -> Self {
        Transition {
            state: Some(state),
            ..Default::default()
        }
    }

    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }
}

/// What [`Store::transition`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Yes,
    /// The job is already at or past that state: the state is unchanged (a terminal job is not
    /// touched at all; a live one still takes the transition's fields).
    Stale,
    /// No such job (unknown id, or expired).
    Missing,
    /// The result came from a worker that is not the job's source.
    WrongWorker,
}

const TRANSITION: &str = r#"
local key = KEYS[1]
local cur = redis.call('HGET', key, 'state')
if not cur then return -1 end
if ARGV[3] ~= '' and redis.call('HGET', key, 'source_worker') ~= ARGV[3] then return -2 end
local rank = {queued = 0, dispatched = 1, running = 2}
local cr = rank[cur] or 3
if cr == 3 then return 0 end
for i = 5, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
local new = ARGV[1]
if new ~= '' and (rank[new] or 3) <= cr then return 0 end
if new ~= '' then
  local id, created = ARGV[2], redis.call('HGET', key, 'created_at_ms')
  redis.call('HSET', key, 'state', new)
  redis.call('ZREM', 'podperf:jobs:state:' .. cur, id)
  redis.call('ZADD', 'podperf:jobs:state:' .. new, created, id)
  if (rank[new] or 3) == 3 then
    redis.call('SREM', 'podperf:jobs:active', id)
    redis.call('EXPIRE', key, ARGV[4])
    local latest = redis.call('HGET', key, 'latest_key')
    if new == 'succeeded' and latest then redis.call('SET', latest, id, 'EX', ARGV[4]) end
    return redis.call('HGETALL', key)
  end
end
return 1
"#;

/// The Redis-backed store. Cheap to clone (one multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    retention: Duration,
    transition: std::sync::Arc<redis::Script>,
    /// When the indexes were last trimmed to the retention window (epoch ms).
    last_trim_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Store {
    /// Connects, retrying until Redis answers (a dispatcher may start before its Redis).
    pub async fn connect(url: &str, retention: Duration) -> Result<Store> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let mut delay = Duration::from_millis(200);
        let conn = loop {
            match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                Ok(c) => break c,
                Err(err) => {
                    tracing::warn!(%err, "redis not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        };
        Ok(Store {
            conn,
            retention,
            transition: std::sync::Arc::new(redis::Script::new(TRANSITION)),
            last_trim_ms: Default::default(),
        })
    }

    fn retention_s(&self) -> u64 {
        self.retention.as_secs().max(1)
    }

    /// Stores a batch of new (queued) jobs atomically.
    pub async fn insert(&self, jobs: &[NewJob]) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let ttl = self.retention_s() as i64;
        let now = podperf_protocol::now_ms();
        for job in jobs {
            let key = job_key(job.job_id);
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
            .zadd(ALL_JOBS, &id, score)
            .ignore()
            .zadd(state_key(JobState::Queued), &id, score)
            .ignore()
            .zadd(worker_key(&job.source_worker), &id, score)
            .ignore()
            .sadd(ACTIVE, &id)
            .ignore();
            if let Some(t) = &job.target_worker {
                pipe.zadd(worker_key(t), &id, score).ignore();
                let kind = job.params.kind();
                let latest = format!("podperf:latest:{}:{t}:{kind}", job.source_worker);
                pipe.hset(&key, "latest_key", latest).ignore();
            }
        }
        let workers: std::collections::BTreeSet<&str> = jobs
            .iter()
            .flat_map(|j| {
                std::iter::once(j.source_worker.as_str()).chain(j.target_worker.as_deref())
            })
            .collect();
        for w in &workers {
            pipe.expire(worker_key(w), ttl).ignore(); // a gone worker's index goes with its jobs
        }
        // Trimming the indexes to the retention window is not per-batch work: once a minute.
        let last = self.last_trim_ms.load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) >= TRIM_EVERY_MS {
            self.last_trim_ms
                .store(now, std::sync::atomic::Ordering::Relaxed);
            let horizon = now.saturating_sub(self.retention.as_millis() as u64);
            let indexes = [ALL_JOBS.to_string()]
                .into_iter()
                .chain(JobState::ALL.iter().map(|s| state_key(*s)))
                .chain(workers.into_iter().map(worker_key));
            for index in indexes {
                pipe.zrembyscore(index, 0, horizon as f64).ignore();
            }
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Applies a transition unless the job is already there, past it, or terminal.
    pub async fn transition(&self, job_id: Uuid, t: &Transition) -> Result<Applied> {
        Ok(self.transition_returning(job_id, t).await?.0)
    }

    /// [`Store::transition`], also returning the record when it made the job terminal (one round
    /// trip: the record goes straight into the done notice).
    pub async fn transition_returning(
        &self,
        job_id: Uuid,
        t: &Transition,
    ) -> Result<(Applied, Option<JobRecord>)> {
        if t.expect_worker.as_deref() == Some("") {
            return Ok((Applied::WrongWorker, None)); // "" would read as "no check" in the script
        }
        let mut inv = self.transition.key(job_key(job_id));
        inv.arg(t.state.map(JobState::as_str).unwrap_or(""))
            .arg(job_id.to_string())
            .arg(t.expect_worker.as_deref().unwrap_or(""))
            .arg(self.retention_s());
        for (field, value) in transition_fields(t) {
            inv.arg(field).arg(value);
        }
        let reply: redis::Value = inv.invoke_async(&mut self.conn.clone()).await?;
        if let redis::Value::Int(code) = reply {
            let applied = match code {
                1 => Applied::Yes,
                0 => Applied::Stale,
                -2 => Applied::WrongWorker,
                _ => Applied::Missing,
            };
            return Ok((applied, None));
        }
        // A terminal state was applied: the script returned the job's hash.
        let map: HashMap<String, String> =
            redis::from_redis_value(reply).map_err(|e| StoreError::Corrupt {
                job_id: job_id.to_string(),
                message: e.to_string(),
            })?;
        Ok((Applied::Yes, Some(decode(&job_id.to_string(), map)?)))
    }

    pub async fn get(&self, job_id: Uuid) -> Result<Option<JobRecord>> {
        let map: HashMap<String, String> = self.conn.clone().hgetall(job_key(job_id)).await?;
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
                pipe.cmd("HMGET").arg(job_key(*id)).arg(&FIELDS[..]);
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

    /// Stores a matrix run (its jobs are inserted separately).
    pub async fn put_run(&self, run: &RunRecord) -> Result<()> {
        let json = serde_json::to_string(run).expect("run serialises");
        let key = format!("podperf:run:{}", run.run_id);
        let mut pipe = redis::pipe();
        pipe.set_ex(&key, json, self.retention_s()).ignore();
        pipe.zadd(RUNS, run.run_id.to_string(), run.created_at_ms)
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    pub async fn get_run(&self, run_id: Uuid) -> Result<Option<RunRecord>> {
        let json: Option<String> = self
            .conn
            .clone()
            .get(format!("podperf:run:{run_id}"))
            .await?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| StoreError::Corrupt {
                job_id: format!("run {run_id}"),
                message: e.to_string(),
            })
        })
        .transpose()
    }

    /// Ids of the newest runs.
    pub async fn list_runs(&self, limit: u32) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = self
            .conn
            .clone()
            .zrevrange(RUNS, 0, limit.saturating_sub(1) as isize)
            .await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    /// The fixed part of a job (what a restarted dispatcher needs to resume it).
    pub async fn get_new_job(&self, job_id: Uuid) -> Result<Option<(NewJob, JobState)>> {
        let (record, state): (Option<String>, Option<String>) = self
            .conn
            .clone()
            .hmget(job_key(job_id), &["record", "state"])
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
        let ids: Vec<String> = self.conn.clone().smembers(ACTIVE).await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    /// Drops an id from the active set (its hash expired or vanished).
    pub async fn forget_active(&self, job_id: Uuid) -> Result<()> {
        self.conn
            .clone()
            .srem::<_, _, ()>(ACTIVE, job_id.to_string())
            .await?;
        Ok(())
    }

    /// Jobs matching `q`, newest first.
    pub async fn list(&self, q: &ListJobsRequest) -> Result<Vec<JobRecord>> {
        let limit = q.limit.unwrap_or(100).clamp(1, 1000) as isize;
        let index = match (&q.worker, q.state) {
            (Some(w), _) => worker_key(w),
            (None, Some(s)) => state_key(s),
            (None, None) => ALL_JOBS.to_string(),
        };
        let max = q
            .until_ms
            .map(|u| u.to_string())
            .unwrap_or_else(|| "+inf".into());
        let min = q
            .since_ms
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-inf".into());
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
                pipe.hgetall(format!("podperf:job:{id}"));
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

    /// Remembers a worker (to answer "offline" rather than "unknown" once it is gone).
    pub async fn remember_worker(&self, info: &WorkerInfo) -> Result<()> {
        let json = serde_json::to_string(info).expect("worker info serialises");
        let mut pipe = redis::pipe();
        pipe.hset(KNOWN_WORKERS, &info.worker_id, json).ignore();
        pipe.expire(KNOWN_WORKERS, self.retention_s() as i64)
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Workers seen before, by id.
    pub async fn known_workers(&self) -> Result<Vec<WorkerInfo>> {
        let map: HashMap<String, String> = self.conn.clone().hgetall(KNOWN_WORKERS).await?;
        Ok(map
            .values()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect())
    }

    /// Id of the newest succeeded job from `source` to `target` of `kind`.
    pub async fn latest(&self, source: &str, target: &str, kind: &str) -> Result<Option<Uuid>> {
        let id: Option<String> = self
            .conn
            .clone()
            .get(format!("podperf:latest:{source}:{target}:{kind}"))
            .await?;
        Ok(id.and_then(|s| s.parse().ok()))
    }
}

fn transition_fields(t: &Transition) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    let mut push = |k: &'static str, v: Option<String>| {
        if let Some(v) = v {
            f.push((k, v));
        }
    };
    push("attempts", t.attempts.map(|v| v.to_string()));
    push(
        "dispatched_at_ms",
        t.dispatched_at_ms.map(|v| v.to_string()),
    );
    push("started_at_ms", t.started_at_ms.map(|v| v.to_string()));
    push("finished_at_ms", t.finished_at_ms.map(|v| v.to_string()));
    push(
        "reason",
        t.reason
            .map(|r| serde_json::to_string(&r).expect("reason serialises")),
    );
    push("message", t.message.clone());
    push(
        "result",
        t.result
            .as_ref()
            .map(|r| serde_json::to_string(r).expect("result serialises")),
    );
    push("raw_output", t.raw_output.clone());
    f
}

fn decode(id: &str, mut map: HashMap<String, String>) -> Result<JobRecord> {
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
    Ok(JobRecord {
        job_id: job.job_id,
        state,
        params: job.params,
        source_worker: job.source_worker,
        target: job.target,
        target_ip: job.target_ip,
        target_worker: job.target_worker,
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

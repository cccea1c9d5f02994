//! Jobs: read back one by one, many at once, or a page at a time through the indexes (inserted
//! by `insert`), and the indexes trimmed to the retention window.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use podperf_protocol::api::{JobRecord, ListJobsRequest};
use podperf_protocol::outcome::JobState;
use redis::AsyncCommands;
use uuid::Uuid;

use super::record::{decode, NewJob};
use super::{keys, Result, Store, StoreError};

/// How often inserts trim the indexes to the retention window.
const TRIM_EVERY_MS: u64 = 60_000;

impl Store {
    /// Trims the indexes (every job, the states', the batch's workers') to the retention window:
    /// not per-batch work, once a minute. A failure is only logged: the batch is stored.
    pub(super) async fn trim_indexes(&self, jobs: &[NewJob]) {
        let now = podperf_protocol::now_ms();
        let last = self.last_trim_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < TRIM_EVERY_MS {
            return;
        }
        self.last_trim_ms.store(now, Ordering::Relaxed);
        let workers: BTreeSet<&str> = jobs
            .iter()
            .flat_map(|j| std::iter::once(j.source_worker.as_str()).chain(j.target_worker()))
            .collect();
        let horizon = now.saturating_sub(self.retention.as_millis() as u64);
        let indexes = [keys::ALL_JOBS.to_string()]
            .into_iter()
            .chain(JobState::ALL.iter().map(|s| keys::state_index(*s)))
            .chain(workers.into_iter().map(keys::worker_index));
        let mut pipe = redis::pipe();
        for index in indexes {
            pipe.zrembyscore(index, 0, horizon as f64).ignore();
        }
        if let Err(err) = pipe.query_async::<()>(&mut self.conn.clone()).await {
            tracing::warn!(%err, "could not trim the job indexes; the next batch will");
            self.last_trim_ms.store(last, Ordering::Relaxed);
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

    /// How many jobs are not yet terminal.
    pub async fn active_count(&self) -> Result<usize> {
        Ok(self.conn.clone().scard(keys::ACTIVE).await?)
    }

    /// How many jobs the indexes hold (outstanding and terminal).
    pub async fn jobs_kept(&self) -> Result<u64> {
        Ok(self.conn.clone().zcard(keys::ALL_JOBS).await?)
    }

    /// Redis's `used_memory` (bytes).
    pub async fn used_memory(&self) -> Result<u64> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0))
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
        Ok(self.list_within(q, usize::MAX).await?.jobs)
    }

    /// Jobs matching `q`, newest first, as many as fit in `max_bytes` of JSON (each record and a
    /// comma; a `jobs.list` reply is one NATS message). The hashes are read [`READ_CHUNK`] at a
    /// time, so a page of large records (1,000-node sweeps, ≈ 200 KB each) reads from Redis about
    /// what it returns, not `limit` records.
    pub async fn list_within(&self, q: &ListJobsRequest, max_bytes: usize) -> Result<ListPage> {
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
        let mut used = 0usize;
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
            for chunk in ids.chunks(READ_CHUNK) {
                let mut pipe = redis::pipe();
                for id in chunk {
                    pipe.hgetall(keys::job_str(id));
                }
                let maps: Vec<HashMap<String, String>> =
                    pipe.query_async(&mut self.conn.clone()).await?;
                for (id, map) in chunk.iter().zip(maps) {
                    if map.is_empty() {
                        continue; // expired
                    }
                    let rec = decode(id, map)?;
                    if q.state.is_some_and(|s| s != rec.state) || (out.len() as isize) >= limit {
                        continue;
                    }
                    if max_bytes != usize::MAX {
                        let size = json_len(&rec).saturating_add(1);
                        if used.saturating_add(size) > max_bytes {
                            let too_large = out.is_empty().then_some((rec.job_id, size));
                            return Ok(ListPage {
                                jobs: out,
                                truncated: true,
                                too_large,
                            });
                        }
                        used += size;
                    }
                    out.push(rec);
                }
            }
            if (ids.len() as isize) < page {
                break;
            }
        }
        Ok(ListPage {
            jobs: out,
            truncated: false,
            too_large: None,
        })
    }
}

/// Job hashes read per Redis round trip when listing.
const READ_CHUNK: usize = 32;

/// A page of [`Store::list_within`].
#[derive(Debug)]
pub struct ListPage {
    pub jobs: Vec<JobRecord>,
    /// Matching jobs were left out to keep the page within its bytes.
    pub truncated: bool,
    /// The newest match and the size of its record, when that alone is larger than the bytes
    /// allowed (`jobs` is then empty).
    pub too_large: Option<(Uuid, usize)>,
}

/// The length of `rec`'s JSON, counted without keeping it.
fn json_len(rec: &JobRecord) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, rec).map_or(usize::MAX, |()| count.0)
}

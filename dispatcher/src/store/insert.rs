//! Storing a batch: its jobs (queued), its run if it has one, and its submit claim, written
//! together by one Lua script, so a retried submit is stored once whatever replica takes it.
//!
//! A claim (`podperf:submit:<id>`, [`keys::submit`]) holds the fingerprint of what was asked and
//! the answer given. The script stores nothing when the claim exists and returns it instead: a
//! replica paused after it received a submit, and resumed after the client retried elsewhere,
//! finds the retry's claim and stores nothing. Without a submit id there is no claim (older
//! clients): every submit is a new batch.

use std::sync::LazyLock;

use podperf_protocol::outcome::JobState;
use podperf_protocol::run::RunRecord;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::record::NewJob;
use super::{keys, Result, Store, StoreError};

/// `KEYS`: the claim, every job, the queued index, the active set, the runs index, the run; then
/// per job its hash, its source worker's index and its target worker's (the source's again when
/// it has none). `ARGV`: whether there is a claim (`1`/`0`), the claim, the claim's TTL, the jobs'
/// TTL, the run (JSON, or empty), its id, its creation time, the queued state; then per job its
/// id, creation time, record and source worker. Returns the existing claim, or nil once stored.
const INSERT: &str = r#"
local claimed = ARGV[1] == '1'
if claimed then
  local prior = redis.call('GET', KEYS[1])
  if prior then return prior end
end
local ttl = tonumber(ARGV[4])
local n = (#ARGV - 8) / 4
for i = 0, n - 1 do
  local a, k = 9 + i * 4, 7 + i * 3
  local id, score = ARGV[a], ARGV[a + 1]
  redis.call('HSET', KEYS[k], 'state', ARGV[8], 'source_worker', ARGV[a + 3],
    'created_at_ms', score, 'record', ARGV[a + 2], 'attempts', '0')
  redis.call('EXPIRE', KEYS[k], ttl)
  redis.call('ZADD', KEYS[2], score, id)
  redis.call('ZADD', KEYS[3], score, id)
  redis.call('SADD', KEYS[4], id)
  for w = k + 1, k + 2 do
    redis.call('ZADD', KEYS[w], score, id)
    redis.call('EXPIRE', KEYS[w], ttl)
  end
end
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[6], ARGV[5], 'EX', ttl)
  redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6])
end
if claimed then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return false
"#;

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(INSERT));

/// A submit's claim: its id, the fingerprint of the request (what a retry must repeat) and the
/// answer a retry gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    #[serde(skip)]
    pub submit_id: Uuid,
    /// SHA-256 (hex) of the request as the dispatcher parsed it, serialised again (JSON).
    pub fingerprint: String,
    /// The reply (JSON) the first submit got.
    pub answer: serde_json::Value,
}

impl Claim {
    /// The claim of a submit `request` answered `answer`.
    pub fn new(submit_id: Uuid, request: &impl Serialize, answer: &impl Serialize) -> Claim {
        Claim {
            submit_id,
            fingerprint: fingerprint(request),
            answer: serde_json::to_value(answer).expect("answers serialise"),
        }
    }

    /// Whether `request` is the one this claim was made for.
    pub fn same_request(&self, request: &impl Serialize) -> bool {
        self.fingerprint == fingerprint(request)
    }

    /// The stored answer.
    pub fn answer<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.answer.clone()).map_err(|e| StoreError::Corrupt {
            job_id: format!("submit {}", self.submit_id),
            message: e.to_string(),
        })
    }
}

fn fingerprint(request: &impl Serialize) -> String {
    let json = serde_json::to_vec(request).expect("requests serialise");
    Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What [`Store::insert_claimed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The batch is stored.
    Stored,
    /// A submit with this id was stored before (nothing was written): its claim.
    Claimed(Claim),
}

impl Store {
    /// Stores a batch of new (queued) jobs atomically.
    pub async fn insert(&self, jobs: &[NewJob]) -> Result<()> {
        self.insert_claimed(jobs, None, None).await.map(|_| ())
    }

    /// Stores a batch of new (queued) jobs, their run and the submit's claim atomically — or,
    /// when the claim exists already, nothing.
    pub async fn insert_claimed(
        &self,
        jobs: &[NewJob],
        run: Option<&RunRecord>,
        claim: Option<&Claim>,
    ) -> Result<Inserted> {
        let ttl = self.retention_s();
        let mut inv = SCRIPT.prepare_invoke();
        let claim_key =
            claim.map_or_else(|| keys::submit(Uuid::nil()), |c| keys::submit(c.submit_id));
        let (run_key, run_json, run_id, run_ms) = match run {
            Some(r) => (
                keys::run(r.run_id),
                serde_json::to_string(r).expect("run serialises"),
                r.run_id.to_string(),
                r.created_at_ms,
            ),
            None => (keys::run(Uuid::nil()), String::new(), String::new(), 0),
        };
        inv.key(claim_key)
            .key(keys::ALL_JOBS)
            .key(keys::state_index(JobState::Queued))
            .key(keys::ACTIVE)
            .key(keys::RUNS)
            .key(run_key)
            .arg(if claim.is_some() { "1" } else { "0" })
            .arg(claim.map_or_else(String::new, |c| {
                serde_json::to_string(c).expect("claims serialise")
            }))
            .arg(self.submit_id_ttl.as_secs().clamp(1, ttl))
            .arg(ttl)
            .arg(run_json)
            .arg(run_id)
            .arg(run_ms)
            .arg(JobState::Queued.as_str());
        for job in jobs {
            let source = keys::worker_index(&job.source_worker);
            let target = job.target_worker().map(keys::worker_index);
            inv.key(keys::job(job.job_id))
                .key(&source)
                .key(target.as_ref().unwrap_or(&source))
                .arg(job.job_id.to_string())
                .arg(job.created_at_ms)
                .arg(serde_json::to_string(job).expect("job serialises"))
                .arg(&job.source_worker);
        }
        let prior: Option<String> = inv.invoke_async(&mut self.conn.clone()).await?;
        if let Some(prior) = prior {
            let submit_id = claim.map_or(Uuid::nil(), |c| c.submit_id);
            return Ok(Inserted::Claimed(decode_claim(submit_id, &prior)?));
        }
        self.trim_indexes(jobs).await;
        Ok(Inserted::Stored)
    }

    /// The claim of submit `submit_id`, if one was stored (within its TTL).
    pub async fn claim(&self, submit_id: Uuid) -> Result<Option<Claim>> {
        let raw: Option<String> =
            redis::AsyncCommands::get(&mut self.conn.clone(), keys::submit(submit_id)).await?;
        raw.map(|r| decode_claim(submit_id, &r)).transpose()
    }
}

fn decode_claim(submit_id: Uuid, raw: &str) -> Result<Claim> {
    let mut claim: Claim = serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        job_id: format!("submit {submit_id}"),
        message: e.to_string(),
    })?;
    claim.submit_id = submit_id;
    Ok(claim)
}

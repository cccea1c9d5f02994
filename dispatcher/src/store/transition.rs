//! State changes: one Lua script that never moves a job backwards and never changes a terminal
//! job, so the first terminal state wins. (A late `dispatched` after `running` still records its
//! fields — attempts, dispatch time — without moving the state.)
//!
//! The script's rank table comes from [`JobState::rank`] and its keys from [`super::keys`]
//! (passed as `KEYS[]`): the life-cycle order and the key names are written once.

use std::collections::HashMap;

use podperf_protocol::api::JobRecord;
use podperf_protocol::outcome::{FailureReason, JobState};
use podperf_protocol::result::ProbeResult;
use uuid::Uuid;

use super::{keys, record::decode, Result, Store, StoreError};

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

    /// The hash fields this transition sets (besides the state).
    fn fields(&self) -> Vec<(&'static str, String)> {
        fn json<T: serde::Serialize>(v: &T) -> String {
            serde_json::to_string(v).expect("transition fields serialise")
        }
        [
            ("attempts", self.attempts.map(|v| v.to_string())),
            (
                "dispatched_at_ms",
                self.dispatched_at_ms.map(|v| v.to_string()),
            ),
            ("started_at_ms", self.started_at_ms.map(|v| v.to_string())),
            ("finished_at_ms", self.finished_at_ms.map(|v| v.to_string())),
            ("reason", self.reason.as_ref().map(json)),
            ("message", self.message.clone()),
            ("result", self.result.as_ref().map(json)),
            ("raw_output", self.raw_output.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
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

/// `KEYS[]`: the job's hash, the active set, one index per state in [`JobState::ALL`] order, then
/// the leader's epoch (the last key).
fn script_keys(job_id: Uuid) -> Vec<String> {
    [keys::job(job_id), keys::ACTIVE.to_string()]
        .into_iter()
        .chain(JobState::ALL.iter().map(|s| keys::state_index(*s)))
        .chain([keys::EPOCH.to_string()])
        .collect()
}

/// Position of a state's index in `KEYS[]` (1-based, after the hash and the active set).
const FIRST_INDEX_KEY: usize = 3;

/// The transition script. `ARGV`: new state (or ''), job id, expected source worker (or ''),
/// retention (s), the writer's epoch (or '' when unfenced), then field/value pairs. Returns 1
/// (applied), 0 (stale), -1 (missing), -2 (wrong worker), -3 (fenced: a newer leader's epoch is
/// current; nothing written), or the job's hash when the job just became terminal.
pub(super) fn script() -> String {
    let table = |value: &dyn Fn(usize, JobState) -> String| {
        let entries: Vec<String> = JobState::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{} = {}", s.as_str(), value(i, *s)))
            .collect();
        format!("{{{}}}", entries.join(", "))
    };
    let rank = table(&|_, s| s.rank().to_string());
    let index = table(&|i, _| (FIRST_INDEX_KEY + i).to_string());
    let terminal = JobState::TERMINAL_RANK;
    format!(
        r#"
local rank = {rank}
local index = {index}
local TERMINAL = {terminal}
local key, active = KEYS[1], KEYS[2]
if ARGV[5] ~= '' and tonumber(redis.call('GET', KEYS[#KEYS]) or '0') > tonumber(ARGV[5]) then
  return -3
end
local cur = redis.call('HGET', key, 'state')
if not cur then return -1 end
if ARGV[3] ~= '' and redis.call('HGET', key, 'source_worker') ~= ARGV[3] then return -2 end
local cr = rank[cur] or TERMINAL
if cr == TERMINAL then return 0 end
for i = 6, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
local new = ARGV[1]
if new ~= '' and (rank[new] or TERMINAL) <= cr then return 0 end
if new ~= '' then
  local id, created = ARGV[2], redis.call('HGET', key, 'created_at_ms')
  redis.call('HSET', key, 'state', new)
  redis.call('ZREM', KEYS[index[cur]], id)
  redis.call('ZADD', KEYS[index[new]], created, id)
  if rank[new] == TERMINAL then
    redis.call('SREM', active, id)
    redis.call('EXPIRE', key, ARGV[4])
    return redis.call('HGETALL', key)
  end
end
return 1
"#
    )
}

impl Store {
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
        let mut inv = self.transition.prepare_invoke();
        for key in script_keys(job_id) {
            inv.key(key);
        }
        inv.arg(t.state.map(JobState::as_str).unwrap_or(""))
            .arg(job_id.to_string())
            .arg(t.expect_worker.as_deref().unwrap_or(""))
            .arg(self.retention_s())
            .arg(self.epoch.map(|e| e.to_string()).unwrap_or_default());
        for (field, value) in t.fields() {
            inv.arg(field).arg(value);
        }
        let reply: redis::Value = inv.invoke_async(&mut self.conn.clone()).await?;
        if let redis::Value::Int(code) = reply {
            let applied = match code {
                1 => Applied::Yes,
                0 => Applied::Stale,
                -2 => Applied::WrongWorker,
                -3 => {
                    let epoch = self.epoch.unwrap_or_default();
                    return Err(StoreError::Fenced { epoch });
                }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_ranks_every_state_as_job_state_does() {
        let script = script();
        for s in JobState::ALL {
            let entry = format!("{} = {}", s.as_str(), s.rank());
            assert!(script.contains(&entry), "{entry} in the rank table");
        }
        assert!(script.contains(&format!("TERMINAL = {}", JobState::TERMINAL_RANK)));
    }

    #[test]
    fn each_state_names_its_own_index_key() {
        let id = Uuid::now_v7();
        let keys = script_keys(id);
        let script = script();
        assert_eq!(keys[0], keys::job(id));
        assert_eq!(keys[1], keys::ACTIVE);
        for (i, s) in JobState::ALL.into_iter().enumerate() {
            let position = FIRST_INDEX_KEY + i; // Lua's KEYS[] is 1-based
            assert_eq!(keys[position - 1], keys::state_index(s));
            assert!(script.contains(&format!("{} = {position}", s.as_str())));
        }
    }
}

//! The store's budget (`PODPERF_STORE_MAX_JOBS`): beyond it, terminal jobs are trimmed oldest
//! first — only those created before the oldest outstanding job, so neither an outstanding job
//! nor any job of a run still in progress (its jobs share the run's creation time) is touched.
//! No Redis `maxmemory` eviction is involved: it could drop an outstanding job.

use podperf_protocol::outcome::JobState;
use redis::AsyncCommands;

use super::{keys, Result, Store};

/// Jobs one script call removes at most (keeps each call short).
const BATCH: usize = 500;

/// `KEYS[]`: every job, the active set, then the state indexes in [`JobState::ALL`] order.
/// `ARGV`: how many to remove at most. Returns how many it removed.
const TRIM: &str = r#"
local all, active = KEYS[1], KEYS[2]
local floor = '+inf'
for i = 3, #KEYS do
  local state = string.sub(KEYS[i], string.len('podperf:jobs:state:') + 1)
  if state == 'queued' or state == 'dispatched' or state == 'running' then
    local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    if first[2] and (floor == '+inf' or tonumber(first[2]) < tonumber(floor)) then
      floor = first[2]
    end
  end
end
local bound = floor == '+inf' and '+inf' or ('(' .. floor)
local ids = redis.call('ZRANGEBYSCORE', all, '-inf', bound, 'LIMIT', 0, tonumber(ARGV[1]))
local removed = 0
for _, id in ipairs(ids) do
  if redis.call('SISMEMBER', active, id) == 0 then
    local key = 'podperf:job:' .. id
    local fields = redis.call('HMGET', key, 'source_worker', 'record')
    if fields[1] then
      redis.call('ZREM', 'podperf:jobs:worker:' .. fields[1], id)
    end
    if fields[2] then
      local ok, rec = pcall(cjson.decode, fields[2])
      if ok and type(rec.target_worker) == 'string' then
        redis.call('ZREM', 'podperf:jobs:worker:' .. rec.target_worker, id)
      end
    end
    for i = 3, #KEYS do redis.call('ZREM', KEYS[i], id) end
    redis.call('ZREM', all, id)
    redis.call('DEL', key)
    removed = removed + 1
  end
end
return removed
"#;

impl Store {
    /// Trims terminal jobs, oldest first, until at most `max_terminal` are kept (or none is
    /// older than the oldest outstanding job); returns how many were removed.
    pub async fn trim_to(&self, max_terminal: u64) -> Result<u64> {
        let mut removed = 0;
        loop {
            let kept: u64 = self.conn.clone().zcard(keys::ALL_JOBS).await?;
            let active: u64 = self.conn.clone().scard(keys::ACTIVE).await?;
            let excess = kept.saturating_sub(active).saturating_sub(max_terminal);
            if excess == 0 {
                return Ok(removed);
            }
            let script = redis::Script::new(TRIM);
            let mut inv = script.prepare_invoke();
            inv.key(keys::ALL_JOBS).key(keys::ACTIVE);
            for s in JobState::ALL {
                inv.key(keys::state_index(s));
            }
            inv.arg(excess.min(BATCH as u64));
            let n: u64 = inv.invoke_async(&mut self.conn.clone()).await?;
            removed += n;
            if n == 0 {
                return Ok(removed); // what is left is newer than an outstanding job
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_the_keys_the_schema_does() {
        let id = uuid::Uuid::nil();
        assert_eq!(keys::job(id), format!("podperf:job:{id}"));
        assert_eq!(keys::worker_index("w"), "podperf:jobs:worker:w");
        for s in [JobState::Queued, JobState::Dispatched, JobState::Running] {
            let index = keys::state_index(s);
            assert!(index.starts_with("podperf:jobs:state:"), "{index}");
            assert!(TRIM.contains(&format!("'{}'", s.as_str())), "{s}");
        }
    }
}

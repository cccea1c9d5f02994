//! Matrix runs: the run (JSON) and an index of run ids by creation time. A run's jobs are
//! inserted separately ([`Store::insert`]).

use podperf_protocol::run::RunRecord;
use redis::AsyncCommands;
use uuid::Uuid;

use super::{keys, Result, Store, StoreError};

impl Store {
    /// Stores a matrix run (its jobs are inserted separately).
    pub async fn put_run(&self, run: &RunRecord) -> Result<()> {
        let json = serde_json::to_string(run).expect("run serialises");
        let mut pipe = redis::pipe();
        pipe.set_ex(keys::run(run.run_id), json, self.retention_s())
            .ignore();
        pipe.zadd(keys::RUNS, run.run_id.to_string(), run.created_at_ms)
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    pub async fn get_run(&self, run_id: Uuid) -> Result<Option<RunRecord>> {
        let json: Option<String> = self.conn.clone().get(keys::run(run_id)).await?;
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
            .zrevrange(keys::RUNS, 0, limit.saturating_sub(1) as isize)
            .await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }
}

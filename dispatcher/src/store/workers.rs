//! Workers seen before, so that a gone worker is answered "offline" rather than "unknown".

use std::collections::HashMap;

use podperf_protocol::worker::WorkerInfo;
use redis::AsyncCommands;

use super::{keys, Result, Store};

impl Store {
    /// Remembers a worker (to answer "offline" rather than "unknown" once it is gone).
    pub async fn remember_worker(&self, info: &WorkerInfo) -> Result<()> {
        let json = serde_json::to_string(info).expect("worker info serialises");
        let mut pipe = redis::pipe();
        pipe.hset(keys::KNOWN_WORKERS, &info.worker_id, json)
            .ignore();
        pipe.expire(keys::KNOWN_WORKERS, self.retention_s() as i64)
            .ignore();
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Workers seen before, by id.
    pub async fn known_workers(&self) -> Result<Vec<WorkerInfo>> {
        let map: HashMap<String, String> = self.conn.clone().hgetall(keys::KNOWN_WORKERS).await?;
        Ok(map
            .values()
            .filter_map(|v| serde_json::from_str(v).ok())
            .collect())
    }
}

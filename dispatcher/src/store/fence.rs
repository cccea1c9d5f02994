//! Fencing: every new leader takes a new epoch (`INCR` of [`keys::EPOCH`]) before it writes
//! anything, and every state change it writes carries that epoch. The transition script refuses
//! an epoch older than the current one ([`StoreError::Fenced`]), so a deposed leader (paused,
//! partitioned) cannot change a job once its successor has started.

use redis::AsyncCommands;

use super::{keys, Result, Store};

impl Store {
    /// Takes the next epoch (a new leader, before it writes anything).
    pub async fn next_epoch(&self) -> Result<u64> {
        Ok(self.conn.clone().incr(keys::EPOCH, 1u64).await?)
    }

    /// The current leader's epoch (0 before the first leader).
    pub async fn current_epoch(&self) -> Result<u64> {
        let v: Option<u64> = self.conn.clone().get(keys::EPOCH).await?;
        Ok(v.unwrap_or(0))
    }

    /// This store, its state changes carrying `epoch`.
    pub fn fenced(&self, epoch: u64) -> Store {
        Store {
            epoch: Some(epoch),
            ..self.clone()
        }
    }

    /// The epoch this store's state changes carry, if fenced.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }
}

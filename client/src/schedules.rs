//! The schedules endpoints (`podperf.api.schedules.*`).

use podperf_protocol::schedule::{
    endpoint, AddScheduleRequest, ListSchedulesReply, ListSchedulesRequest, Schedule,
    ScheduleNameRequest,
};

use crate::{Client, Result};

impl Client {
    /// Adds a schedule; the schedule as stored (its first run is due at once, within its jitter).
    pub async fn schedule_add(&self, req: &AddScheduleRequest) -> Result<Schedule> {
        self.call(endpoint::SCHEDULES_ADD, req).await
    }

    /// Every schedule, by name, with its last run and next due time.
    pub async fn schedules(&self) -> Result<Vec<Schedule>> {
        let reply: ListSchedulesReply = self
            .call(endpoint::SCHEDULES_LIST, &ListSchedulesRequest::default())
            .await?;
        Ok(reply.schedules)
    }

    /// Removes a schedule (a run in progress goes on); the schedule as it was.
    pub async fn schedule_rm(&self, name: &str) -> Result<Schedule> {
        self.call(endpoint::SCHEDULES_RM, &named(name)).await
    }

    /// Pauses a schedule: no run starts until it is resumed.
    pub async fn schedule_pause(&self, name: &str) -> Result<Schedule> {
        self.call(endpoint::SCHEDULES_PAUSE, &named(name)).await
    }

    /// Resumes a schedule; runs missed while it was paused are not made up for.
    pub async fn schedule_resume(&self, name: &str) -> Result<Schedule> {
        self.call(endpoint::SCHEDULES_RESUME, &named(name)).await
    }
}

fn named(name: &str) -> ScheduleNameRequest {
    ScheduleNameRequest {
        name: name.to_string(),
    }
}

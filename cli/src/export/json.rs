//! `-o json`: the protocol's types as they are, pretty-printed; the live feed one compact message
//! a line. Shows worker ids only, so nothing is looked up for names.

use podperf_client::Live;
use podperf_protocol::api::{JobRecord, ListJobsReply, ListWorkersReply, SubmitReply};
use podperf_protocol::run::{ListRunsReply, RunReport};
use serde::Serialize;

use super::{Exporter, Names};

pub struct Json;

fn pretty(v: &impl Serialize) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("the protocol's types serialise")
    )
}

impl Exporter for Json {
    fn run_report(&self, r: &RunReport, _pairs: bool) -> String {
        pretty(r)
    }

    fn shows_names(&self) -> bool {
        false
    }

    fn workers(&self, reply: &ListWorkersReply, _now_ms: u64) -> String {
        pretty(reply)
    }

    fn job(&self, rec: &JobRecord, _names: &Names) -> String {
        pretty(rec)
    }

    fn jobs(&self, reply: &ListJobsReply, _names: &Names) -> String {
        pretty(reply)
    }

    fn submitted(&self, reply: &SubmitReply) -> String {
        pretty(reply)
    }

    fn runs(&self, reply: &ListRunsReply) -> String {
        pretty(reply)
    }

    /// Each message as JSON on one line; one that is not of the expected shape as it came.
    fn live(&self, item: &Live) -> Option<String> {
        let line = match item {
            Live::Event(ev) => serde_json::to_string(ev),
            Live::Result(o) => serde_json::to_string(o),
            Live::Malformed { payload, .. } => Ok(String::from_utf8_lossy(payload).into_owned()),
        };
        Some(format!(
            "{}\n",
            line.expect("the protocol's types serialise")
        ))
    }
}

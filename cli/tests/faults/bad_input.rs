//! Bad input through the real binaries: hostile or broken API requests are refused with a typed
//! error naming the field and nothing is stored, dispatched or executed; the worker refuses a
//! forged job sent straight to its subject; forged results never overwrite a terminal state.

mod forged;
mod requests;

use std::time::Duration;

use futures::StreamExt;
use podperf_protocol::names::result_subject;
use serde_json::{json, Value};
use uuid::Uuid;

use podperf_client::ErrorKind;
use podperf_protocol::api::ErrorCode;
use podperf_protocol::names::endpoint;
use podperf_protocol::outcome::JobState;
use podperf_protocol::result::{NoopResult, ProbeResult};
use podperf_testkit::call_raw_reply;

use crate::harness::{eventually, noop, DispatcherOpts, Sys};

fn job(source: &str, target: Value, params: Value) -> Value {
    json!({"source": source, "target": target, "params": params})
}

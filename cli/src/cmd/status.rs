//! `podperf status`: the dispatcher replicas (which one leads), whether NATS and Redis answer,
//! the queue depth, and each store's use against its budget.

use std::fmt::Write as _;
use std::process::ExitCode;

use podperf_protocol::now_ms;
use podperf_protocol::status::{Reachability, StatusReply};

use super::{print, Ctx};
use crate::export::Output;

#[derive(Debug, clap::Args)]
pub struct Status {}

impl Status {
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let status = ctx.client.status().await?;
        let text = match ctx.output {
            Output::Json => serde_json::to_string_pretty(&status)? + "\n",
            _ => table(&status, now_ms()),
        };
        print(&text)?;
        let healthy = status.nats.reachable && status.redis.reachable;
        Ok(if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

fn reach(r: &Reachability) -> String {
    match (r.reachable, r.rtt_ms, &r.error) {
        (true, Some(ms), _) => format!("reachable ({ms} ms)"),
        (true, None, _) => "reachable".into(),
        (false, _, Some(e)) => format!("UNREACHABLE: {e}"),
        (false, _, None) => "UNREACHABLE".into(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn percent(used: u64, max: u64) -> String {
    if max == 0 {
        return "-".into();
    }
    format!("{:.0}%", used as f64 * 100.0 / max as f64)
}

/// The human form.
fn table(s: &StatusReply, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<8} {:<24} {:>8} {:>10} VERSION",
        "DISPATCHER", "ROLE", "HOST", "PID", "SINCE"
    );
    for d in &s.dispatchers {
        let since = now.saturating_sub(d.since_ms) / 1000;
        let me = if d.dispatcher_id == s.answered_by {
            " *"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<14} {:<8} {:<24} {:>8} {:>9}s {}{me}",
            d.dispatcher_id,
            d.role.as_str(),
            d.host,
            d.pid,
            since,
            d.version
        );
    }
    let st = &s.store;
    let _ = writeln!(out, "\nNATS   {}", reach(&s.nats));
    let _ = writeln!(out, "Redis  {}", reach(&s.redis));
    let _ = writeln!(out, "queue depth  {} jobs outstanding", s.queue_depth);
    let _ = writeln!(
        out,
        "results stream  {} of {} ({}), {} messages",
        mib(st.results_bytes),
        mib(st.results_max_bytes),
        percent(st.results_bytes, st.results_max_bytes),
        st.results_messages
    );
    let _ = writeln!(
        out,
        "job store       {} of {} jobs ({}), Redis uses {}",
        st.jobs_kept,
        st.jobs_max,
        percent(st.jobs_kept, st.jobs_max),
        mib(st.redis_used_bytes)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use podperf_protocol::status::{DispatcherInfo, Role, StoreUse};

    #[test]
    fn the_table_names_the_leader_and_the_budgets() {
        let d = |id: &str, role| DispatcherInfo {
            dispatcher_id: id.into(),
            host: format!("pod-{id}"),
            pid: 7,
            role,
            since_ms: 1_000,
            version: "0.1.0".into(),
            epoch: None,
        };
        let s = StatusReply {
            dispatchers: vec![d("a1", Role::Leader), d("b2", Role::Standby)],
            answered_by: "b2".into(),
            nats: Reachability {
                reachable: true,
                rtt_ms: Some(1),
                error: None,
            },
            redis: Reachability {
                reachable: false,
                rtt_ms: None,
                error: Some("connection refused".into()),
            },
            queue_depth: 3,
            store: StoreUse {
                results_bytes: 1 << 20,
                results_max_bytes: 4 << 20,
                results_messages: 10,
                jobs_kept: 50,
                jobs_max: 100,
                redis_used_bytes: 0,
            },
        };
        let t = table(&s, 11_000);
        assert!(t.contains("a1             leader"), "{t}");
        assert!(t.contains("standby") && t.contains("10s 0.1.0 *"), "{t}");
        assert!(t.contains("UNREACHABLE: connection refused"), "{t}");
        assert!(t.contains("1.0 MiB of 4.0 MiB (25%)"), "{t}");
        assert!(t.contains("50 of 100 jobs (50%)"), "{t}");
    }
}

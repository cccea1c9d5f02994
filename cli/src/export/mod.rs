//! Output formats (hyperfine's `src/export/`): every reply the CLI prints goes through one
//! [`Exporter`], picked by `-o`. A new format (SVG, or the web tier's pages) implements the trait;
//! what it has no own form for falls back to the table, as `csv` and `markdown` do for everything
//! but the matrix report.
//!
//! ## Layout
//! - `table.rs` — the human tables and one-line summaries (`-o table`, the default).
//! - `json.rs` — the protocol's types as JSON (`-o json`).
//! - `csv.rs`, `markdown.rs` — the matrix report for spreadsheets and documents.
//! - `cells.rs` — the report's cells (median, spread, units) shared by the table and Markdown.

mod cells;
mod csv;
mod json;
mod markdown;
mod table;

use std::collections::HashMap;

use podperf_client::Live;
use podperf_protocol::api::{JobRecord, ListJobsReply, ListWorkersReply, SubmitReply};
use podperf_protocol::run::{ListRunsReply, RunReport};
use podperf_protocol::worker::WorkerView;

pub use self::csv::Csv;
pub use self::json::Json;
pub use self::markdown::Markdown;
pub use self::table::Table;

/// The `-o` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    /// For `matrix` and `runs ID` (other commands print a table).
    Csv,
    /// For `matrix` and `runs ID` (other commands print a table).
    Markdown,
}

impl Output {
    pub fn exporter(self) -> &'static dyn Exporter {
        match self {
            Output::Table => &Table,
            Output::Json => &Json,
            Output::Csv => &Csv,
            Output::Markdown => &Markdown,
        }
    }
}

/// One output format. Each method returns the whole text to print, ending with a newline.
/// The defaults print what the table prints.
pub trait Exporter {
    /// A matrix run's report; `pairs` adds one row per measured pair where the format shows them.
    fn run_report(&self, r: &RunReport, pairs: bool) -> String;

    /// Whether this format shows pod names (the caller then looks up the workers, once).
    fn shows_names(&self) -> bool {
        true
    }

    fn workers(&self, reply: &ListWorkersReply, now_ms: u64) -> String {
        Table.workers(reply, now_ms)
    }

    /// One job: its header line and its outcome.
    fn job(&self, rec: &JobRecord, names: &Names) -> String {
        Table.job(rec, names)
    }

    fn jobs(&self, reply: &ListJobsReply, names: &Names) -> String {
        Table.jobs(reply, names)
    }

    /// The ids of a submitted batch (`run --no-wait`).
    fn submitted(&self, reply: &SubmitReply) -> String {
        Table.submitted(reply)
    }

    fn runs(&self, reply: &ListRunsReply) -> String {
        Table.runs(reply)
    }

    /// One message of the live feed (`watch`), or nothing to print for it.
    fn live(&self, item: &Live) -> Option<String> {
        Table.live(item)
    }
}

/// Worker id → pod name, for display; an id not in it prints as its short form.
#[derive(Debug, Default)]
pub struct Names(HashMap<String, String>);

impl Names {
    pub fn of(workers: impl IntoIterator<Item = WorkerView>) -> Names {
        Names(
            workers
                .into_iter()
                .map(|w| (w.info.worker_id, w.info.pod_name))
                .collect(),
        )
    }

    pub fn name(&self, id: &str) -> String {
        self.0
            .get(id)
            .cloned()
            .unwrap_or_else(|| crate::render::short_id(id))
    }
}

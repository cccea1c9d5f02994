//! A figure: rows of measured values next to their reference or target, the command that
//! produced it, and the machine's load; written as JSON and Markdown.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::env::{load1, Machine};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub what: String,
    pub value: String,
    /// The reference measured in the same run, or the target.
    pub reference: String,
    /// Whether a target is met; `None` when there is no target.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub id: String,
    pub title: String,
    pub command: String,
    pub load_before: f64,
    pub load_after: f64,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// Raw data (distributions, per-process usage…).
    pub data: serde_json::Value,
}

impl Figure {
    pub fn new(id: &str, title: &str) -> Figure {
        Figure {
            id: id.into(),
            title: title.into(),
            command: format!("scripts/bench.sh {id}"),
            load_before: load1(),
            load_after: f64::NAN,
            rows: Vec::new(),
            notes: Vec::new(),
            data: serde_json::Value::Null,
        }
    }

    pub fn row(&mut self, what: &str, value: String, reference: String, met: Option<bool>) {
        self.rows.push(Row {
            what: what.into(),
            value,
            reference,
            met,
        });
    }

    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }

    pub fn done(mut self) -> Figure {
        self.load_after = load1();
        self
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("### {}\n\n", self.title);
        s += &format!(
            "`{}` — load average (1 min) {:.2} before, {:.2} after\n\n",
            self.command, self.load_before, self.load_after
        );
        s += "| measured | value | reference / target | met |\n|---|---|---|---|\n";
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            s += &format!("| {} | {} | {} | {} |\n", r.what, r.value, r.reference, met);
        }
        for n in &self.notes {
            s += &format!("\n- {n}");
        }
        s + "\n"
    }
}

/// Writes `<out>/<id>.json` and appends to `<out>/figures.md`.
pub fn write(out: &Path, machine: &Machine, fig: &Figure) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::json!({ "machine": machine, "figure": fig });
    std::fs::write(
        out.join(format!("{}.json", fig.id)),
        serde_json::to_vec_pretty(&json).expect("figures serialise"),
    )?;
    let mut md = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out.join("figures.md"))?;
    writeln!(md, "{}", fig.markdown())
}

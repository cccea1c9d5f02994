//! `-o markdown`: the matrix report's class table and footer for documents. Other replies print
//! as the table.

use podperf_protocol::run::RunReport;

use super::cells::{class_row, footer, header};
use super::Exporter;

pub struct Markdown;

impl Exporter for Markdown {
    fn run_report(&self, r: &RunReport, _pairs: bool) -> String {
        markdown(r)
    }
}

pub fn markdown(r: &RunReport) -> String {
    let h = header(r);
    let mut out = format!("| {} |\n|{}\n", h.join(" | "), "---|".repeat(h.len()));
    for c in &r.classes {
        out += &format!("| {} |\n", class_row(r, c).join(" | "));
    }
    out += &format!("\n{}\n", footer(r).replace('\n', "\n\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::super::cells::sample_report;
    use super::*;

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(markdown(&sample_report()));
    }
}

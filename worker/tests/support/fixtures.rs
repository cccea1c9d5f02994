//! Loading the captured tool runs in `tests/fixtures/` (each: `NAME.cmd`, `.stdout`, `.stderr`,
//! `.exit`); shared by the parser tests (`#[path = "support/fixtures.rs"] mod fixtures;`).

use std::path::PathBuf;

use podperf_worker::probe::ToolOutput;

/// One file of the fixture `name`.
pub fn read(name: &str, ext: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        &format!("{name}.{ext}"),
    ]
    .iter()
    .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The captured run `name`, as the runner would hand it over.
pub fn fixture(name: &str) -> ToolOutput {
    ToolOutput {
        exit_code: Some(read(name, "exit").trim().parse().expect("an exit code")),
        stdout: read(name, "stdout"),
        stderr: read(name, "stderr"),
    }
}

//! `podperf-bench-fping`: the simulated `fping` of `podperf-bench sweep-scale` (see
//! `fping_sim.rs`); the simulated workers find it on their `PATH` as `fping`.

#[allow(dead_code)] // the harness uses the rest
#[path = "../fping_sim.rs"]
mod fping_sim;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    fping_sim::run(&args)
}

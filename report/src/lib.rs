//! `podperf-report`: a matrix run's report, a sweep round's grid and its health findings, computed
//! from jobs' records.
//!
//! The report's types ([`RunReport`], [`Spread`], `Figures`, `ClassReport`, `OverlayCost`) travel
//! on the wire, so they are contract and live in [`podperf_protocol::run`]; this crate holds only
//! the computation, purely (no I/O), so that it is tested without a dispatcher. The dispatcher
//! calls [`report`] for `runs.get`.
//!
//! # Layout
//! - `stats.rs` — [`spread`]: the median of samples with their min and max, the mean with its
//!   95 % confidence interval ([`ci95`], Student's t), and [`is_wide`]: the trust threshold
//!   ([`TRUST_SPREAD`]).
//! - `samples.rs` — the samples of one pair or path class, collected from its jobs' records, and
//!   their figures.
//! - `matrix.rs` — [`report`]: the run's progress and its figures per pair and per path class.
//! - `grid.rs` — [`grid`]: a sweep round's node × node grid per path class.
//! - `health.rs` — [`health`]: the node at fault (cannot send, unreachable, isolated, slow,
//!   lossy) from a grid.
//! - `overlay.rs` — [`overlay_cost`]: pod across nodes against node ↔ node.
//! - `verdict.rs` — [`verdict`]: the pass/fail gate (`--tolerance`, `--max-rtt-ratio`).
//! - `sampling.rs` — `--samples auto`: each row's state and [`more_samples`] to add.
//!
//! [`RunReport`]: podperf_protocol::run::RunReport
//! [`Spread`]: podperf_protocol::run::Spread

mod grid;
mod health;
mod matrix;
mod mtu;
mod overlay;
mod samples;
mod sampling;
mod stats;
mod verdict;

#[cfg(test)]
mod fixtures;

pub use grid::{grid, loss_percent, SourceInfo};
pub use health::{
    add_gone, bits_per_second, health, health_with_bandwidth, BANDWIDTH_SLOW_RATIO,
    LOSSY_EXCESS_PERCENT, LOSSY_MIN_LOST, SLOW_EXCESS_MS, SLOW_RATIO,
};
pub use matrix::report;
pub use mtu::mtu_problems;
pub use overlay::overlay_cost;
/// The threshold is part of the wire contract (it defines `Spread::wide`), so it is defined in
/// `podperf-protocol`; re-exported here beside the logic that applies it.
pub use podperf_protocol::run::TRUST_SPREAD;
pub use sampling::{more_samples, row_state, run_state, samples_planned};
pub use stats::{ci95, is_wide, spread, t975};
pub use verdict::verdict;

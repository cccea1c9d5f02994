//! `podperf-report`: a matrix run's report, computed from its jobs' records.
//!
//! The report's types ([`RunReport`], [`Spread`], `Figures`, `ClassReport`, `OverlayCost`) travel
//! on the wire, so they are contract and live in [`podperf_protocol::run`]; this crate holds only
//! the computation, purely (no I/O), so that it is tested without a dispatcher. The dispatcher
//! calls [`report`] for `runs.get`.
//!
//! # Layout
//! - `stats.rs` — [`spread`]: the median of samples with their min and max, and [`is_wide`]: the
//!   trust threshold ([`TRUST_SPREAD`]).
//! - `samples.rs` — the samples of one pair or path class, collected from its jobs' records, and
//!   their figures.
//! - `matrix.rs` — [`report`]: the run's progress and its figures per pair and per path class.
//! - `overlay.rs` — [`overlay_cost`]: pod across nodes against node ↔ node.
//!
//! [`RunReport`]: podperf_protocol::run::RunReport
//! [`Spread`]: podperf_protocol::run::Spread

mod matrix;
mod mtu;
mod overlay;
mod samples;
mod stats;

#[cfg(test)]
mod fixtures;

pub use matrix::report;
pub use mtu::mtu_problems;
pub use overlay::overlay_cost;
/// The threshold is part of the wire contract (it defines `Spread::wide`), so it is defined in
/// `podperf-protocol`; re-exported here beside the logic that applies it.
pub use podperf_protocol::run::TRUST_SPREAD;
pub use stats::{is_wide, spread};

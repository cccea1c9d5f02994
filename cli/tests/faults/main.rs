//! Proof that podperf survives (issue 5): fault injection, bad input and limits, against real
//! `nats-server`, `redis-server`, `podperf-dispatcher` and `podperf-worker` processes, each test
//! with its own servers on free ports in temp dirs. Figures are printed as `FIGURES …` lines and
//! recorded in `RELIABILITY.md`.
//!
//! ```sh
//! cargo build --workspace --bins
//! cargo test -p podperf-cli --test faults -- --nocapture            # short variants
//! PODPERF_LONG_TESTS=1 cargo test -p podperf-cli --test faults -- --nocapture
//! ```
//!
//! # Layout
//! - [`harness`]: the system under test, the API client and the audit of every scenario.
//! - [`scenarios`]: 1 worker SIGKILL, 2 dispatcher SIGKILL, 3 nats-server restart, 4 Redis outage.
//! - [`cluster`]: 5 a node of a 3-node JetStream cluster SIGKILLed.
//! - [`budgets`]: small results-stream and job-store budgets (issue 13).
//! - [`ha`]: two dispatcher replicas: failover, fencing, a rolling restart (issue 13).
//! - [`soak`]: the chaos soak: random faults, one at a time, under a steady mixed load (issue 13).
//! - [`sizing`]: bytes per finished job in Redis and in the results stream, per kind (`--ignored`).
//! - [`bad_input`]: hostile API requests, forged jobs, forged results.
//! - [`limits`]: back-pressure, the worker's concurrency limit, the raw-output cap.
//! - [`underlay`]: 6 a testbed node's underlay link down (needs root and `ip netns`).
//! - [`health`]: `podperf health` names a lossy, an isolated and a one-way blocked testbed node
//!   (root, `ip netns`).
//! - [`health_rounds`]: `podperf health` over many rounds: nothing on a healthy testbed; rounds
//!   from a fault to its finding (root, `ip netns`).
//! - [`bandwidth_health`]: `podperf health` names a node capped with `tc … tbf` slow in
//!   bandwidth after a `--mesh` matrix (root, `ip netns`).

mod bad_input;
mod bandwidth_health;
mod budgets;
mod cluster;
mod ha;
mod harness;
mod health;
mod health_rounds;
mod limits;
mod scenarios;
mod sizing;
mod soak;
#[path = "../support/testbed.rs"]
mod testbed;
mod underlay;

//! The simulated `fping` of the `sweep-scale` figure, shared by the harness (its tests, the
//! time a sweep takes) and the small `podperf-bench-fping` binary the simulated workers run as
//! `fping`: it prints fping's quiet summary with synthetic values (RTT 0.05–0.3 ms per pair,
//! ≈ 1 pair in 10,000 losing one echo in five) after as long as fping would take
//! ([`fping_duration`]; with [`INSTANT_ENV`] set it answers at once).
//!
//! A binary of its own, with nothing but `std`, so starting it costs about what starting fping
//! does: started as the whole harness (≈ 30 MB with its dependencies), the 1,000 starts of a
//! 1,000-node round cost ≈ 3 core-seconds of dynamic linking and page faults on their own.

use std::process::ExitCode;
use std::time::Duration;

/// Set (to anything) in the simulated fping's environment: answer at once.
pub const INSTANT_ENV: &str = "PODPERF_BENCH_FPING_INSTANT";

/// The simulated fping's `main`: `args` without the program name.
pub fn run(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-v") {
        println!("fping: Version 5.1 (podperf-bench simulation)");
        return ExitCode::SUCCESS;
    }
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let Some(run) = FakeRun::of(args, salt) else {
        eprintln!("fping: usage error (simulated fping)");
        return ExitCode::from(3);
    };
    if std::env::var_os(INSTANT_ENV).is_none() {
        std::thread::sleep(run.duration);
    }
    eprint!("{}", run.stderr);
    ExitCode::from(if run.all_answered { 0 } else { 1 })
}

/// How long fping takes for `targets` targets: `count` rounds, each at least `interval_ms` per
/// target and 1 ms (`-i 1`) between any two sends.
pub fn fping_duration(count: u32, interval_ms: u32, targets: usize) -> Duration {
    let per_round = u64::from(interval_ms).max(targets as u64);
    Duration::from_millis(u64::from(count) * per_round)
}

/// What the simulated fping prints for one argv.
#[derive(Debug)]
pub struct FakeRun {
    pub stderr: String,
    pub all_answered: bool,
    pub duration: Duration,
}

impl FakeRun {
    /// `-4|-6 -q -c N -p MS -i MS -t MS [-S SRC] TARGET…` (the worker's argv); `salt` varies
    /// the RTTs from run to run.
    pub fn of(args: &[String], salt: u64) -> Option<FakeRun> {
        let (mut count, mut interval, mut source) = (None, None, String::new());
        let mut targets = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-4" | "-6" | "-q" => {}
                "-c" => count = it.next()?.parse::<u32>().ok(),
                "-p" => interval = it.next()?.parse::<u32>().ok(),
                "-i" | "-t" => {
                    it.next()?;
                }
                "-S" => source = it.next()?.clone(),
                t if !t.starts_with('-') => targets.push(t.to_string()),
                _ => return None,
            }
        }
        let count = count.filter(|c| *c > 0)?;
        let mut stderr = String::new();
        let mut all_answered = true;
        for t in &targets {
            let h = fnv(&source, t);
            // 0.05–0.30 ms per pair, ±10 % from run to run.
            let base = 0.05 + (h % 251) as f64 / 1000.0;
            let avg = base * (0.9 + ((h ^ salt) % 21) as f64 / 100.0);
            let lost = if h % 10_000 == 7 {
                count.div_ceil(5)
            } else {
                0
            };
            let received = count - lost.min(count);
            all_answered &= lost == 0;
            let loss = (100 * lost) / count;
            stderr += &format!(
                "{t} : xmt/rcv/%loss = {count}/{received}/{loss}%, min/avg/max = {:.3}/{:.3}/{:.3}\n",
                avg * 0.8,
                avg,
                avg * 1.6
            );
        }
        Some(FakeRun {
            stderr,
            all_answered,
            duration: fping_duration(count, interval.unwrap_or(1000), targets.len()),
        })
    }
}

/// FNV-1a over the pair, so a pair keeps its RTT from round to round.
fn fnv(a: &str, b: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.bytes().chain([0]).chain(b.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

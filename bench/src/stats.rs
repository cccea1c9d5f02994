//! Percentiles of latency samples.

use std::time::Duration;

use serde::Serialize;

/// A latency distribution, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_nanos() as f64 / 1e3).collect();
        us.sort_by(f64::total_cmp);
        let n = us.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            us.iter().sum::<f64>() / n as f64
        };
        Summary {
            n,
            mean_us: mean,
            p50_us: percentile(&us, 50.0),
            p90_us: percentile(&us, 90.0),
            p99_us: percentile(&us, 99.0),
            p999_us: percentile(&us, 99.9),
            max_us: us.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// `p50 / p99 / p99.9` in ms.
    pub fn ms(&self) -> String {
        format!(
            "{:.3} / {:.3} / {:.3} ms",
            self.p50_us / 1e3,
            self.p99_us / 1e3,
            self.p999_us / 1e3
        )
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // The epsilon keeps 0.999 × 1000 (= 999.000…1 in floating point) at rank 999.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let s = Summary::of(&d);
        assert_eq!(s.p50_us, 500.0);
        assert_eq!(s.p99_us, 990.0);
        assert_eq!(s.p999_us, 999.0);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}

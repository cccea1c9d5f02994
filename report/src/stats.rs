//! Statistics over samples: the median with its spread, the 95 % confidence interval of the
//! mean, and whether the spread is too wide to trust.

use podperf_protocol::run::{Spread, TRUST_SPREAD};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The median of `values` with their min and max, their mean and its 95 % confidence interval
/// ([`ci95`]). Non-finite values (a NaN or an infinity from a tool's output) are left out, and
/// `samples` counts only the values kept. `None` when no finite value is left.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let (min, max) = (v[0], v[n - 1]);
    let (mean, ci) = ci95(&v);
    Some(Spread {
        median,
        min,
        max,
        samples: n as u32,
        wide: is_wide(min, max, median),
        mean: Some(mean),
        ci95_low: ci.map(|c| c.0),
        ci95_high: ci.map(|c| c.1),
    })
}

/// The mean of `values` (finite, at least one) and the 95 % confidence interval of the mean by
/// Student's t: mean ± t(0.975, n − 1) · s / √n, with s the sample standard deviation. No
/// interval with one value.
pub fn ci95(values: &[f64]) -> (f64, Option<(f64, f64)>) {
    let n = values.len() as f64;
    // Summed from the mean of the scaled values: sums of values near f64::MAX would overflow.
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let scale = if scale > 0.0 { scale } else { 1.0 };
    let mean_s = values.iter().map(|v| v / scale).sum::<f64>() / n;
    let mean = (mean_s * scale).clamp(min_of(values), max_of(values));
    if values.len() < 2 {
        return (mean, None);
    }
    let var_s = values
        .iter()
        .map(|v| (v / scale - mean_s).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let t = t975(values.len() as u64 - 1);
    let half = t * (var_s / n).sqrt() * scale;
    (mean, Some((mean - half, mean + half)))
}

fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The 97.5 % quantile of Student's t with `df` degrees of freedom (12.706 at 1, 1.96 as df
/// grows).
pub fn t975(df: u64) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64)
        .expect("df ≥ 1 is a valid t distribution")
        .inverse_cdf(0.975)
}

/// Whether samples from `min` to `max` spread too wide around `median` to trust the median:
/// (max − min) / median above [`TRUST_SPREAD`]. A median of zero (or below) is never wide: there the
/// ratio means nothing (no retransmits in most samples, say).
pub fn is_wide(min: f64, max: f64, median: f64) -> bool {
    median > 0.0 && (max - min) / median > TRUST_SPREAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test]
    fn median_and_spread() {
        let s = spread(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.samples), (2.0, 1.0, 3.0, 3));
        assert!(s.wide, "(3-1)/2 = 100 % spread");
        let s = spread(&[10.0, 10.5, 9.9, 10.1]).unwrap();
        assert_eq!(s.median, 10.05);
        assert!(!s.wide);
        assert_eq!(spread(&[]), None);
        assert_eq!(spread(&[f64::NAN]), None);
    }

    #[test]
    fn the_confidence_interval_of_the_mean() {
        // n = 4, mean 10, s = 0.8165: t(0.975, 3) = 3.182 → ± 1.299.
        let s = spread(&[9.0, 10.0, 10.0, 11.0]).unwrap();
        assert_eq!(s.mean, Some(10.0));
        let (low, high) = (s.ci95_low.unwrap(), s.ci95_high.unwrap());
        assert!(
            (low - 8.701).abs() < 1e-3 && (high - 11.299).abs() < 1e-3,
            "{low} {high}"
        );
        let s = spread(&[9.0, 10.0, 10.0, 11.0, 9.0, 10.0, 10.0, 11.0]).unwrap();
        // n = 8, s = 0.7559: t(0.975, 7) = 2.365 → ± 0.632.
        let half = (s.ci95_high.unwrap() - s.ci95_low.unwrap()) / 2.0;
        assert!((half - 0.632).abs() < 1e-3, "{half}");
        assert!((s.ci95_relative().unwrap() - 0.0632).abs() < 1e-4);
        assert!(!s.converged(), "±6.3 % is above 5 %");
        let one = spread(&[4.0]).unwrap();
        assert_eq!(
            (one.mean, one.ci95_low, one.ci95_high),
            (Some(4.0), None, None)
        );
        assert!(!one.converged(), "one sample has no interval");
    }

    #[test]
    fn the_t_quantiles() {
        assert!((t975(1) - 12.706).abs() < 1e-3);
        assert!((t975(2) - 4.303).abs() < 1e-3);
        assert!((t975(19) - 2.093).abs() < 1e-3);
        assert!((t975(1_000_000) - 1.960).abs() < 1e-3);
    }

    #[test]
    fn non_finite_values_are_left_out_and_not_counted() {
        let s = spread(&[f64::NAN, 4.0, f64::INFINITY, 2.0, f64::NEG_INFINITY]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.samples), (3.0, 2.0, 4.0, 2));
    }

    #[test_case(90.0, 115.0, 100.0, false ; "exactly at the threshold")]
    #[test_case(90.0, 115.5, 100.0, true ; "just above it")]
    #[test_case(0.0, 3.0, 0.0, false ; "a zero median")]
    #[test_case(-4.0, 4.0, -1.0, false ; "a negative median")]
    #[test_case(7.0, 7.0, 7.0, false ; "no spread")]
    fn the_trust_threshold(min: f64, max: f64, median: f64, wide: bool) {
        assert_eq!(is_wide(min, max, median), wide);
    }
}

//! Statistics over samples: the median with its spread, and whether the spread is too wide to
//! trust.

use podperf_protocol::run::{Spread, TRUST_SPREAD};

/// The median of `values` with their min and max. Non-finite values (a NaN or an infinity from a
/// tool's output) are left out, and `samples` counts only the values kept. `None` when no finite
/// value is left.
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
    Some(Spread {
        median,
        min,
        max,
        samples: n as u32,
        wide: is_wide(min, max, median),
    })
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

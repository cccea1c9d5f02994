//! Properties of the statistics over any floats (NaN, infinities, negatives included).
//!
//! `PROPTEST_CASES=10000 cargo test -p podperf-report --test props` for a longer run.

use podperf_report::{ci95, is_wide, spread, TRUST_SPREAD};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn spread_of_any_floats_is_ordered(values in prop::collection::vec(any::<f64>(), 0..20)) {
        if let Some(s) = spread(&values) {
            prop_assert!(s.min <= s.median && s.median <= s.max, "{:?}", s);
            prop_assert!(s.samples as usize <= values.len());
        }
    }

    #[test]
    fn spread_counts_the_finite_values_and_ignores_their_order(
        mut values in prop::collection::vec(any::<f64>(), 0..20),
    ) {
        let finite = values.iter().filter(|v| v.is_finite()).count();
        let s = spread(&values);
        prop_assert_eq!(s.as_ref().map_or(0, |s| s.samples as usize), finite);
        values.reverse();
        prop_assert_eq!(spread(&values), s);
    }

    #[test]
    fn wide_means_beyond_the_trust_threshold(values in prop::collection::vec(0.0..1e12f64, 1..20)) {
        let s = spread(&values).unwrap();
        prop_assert_eq!(s.wide, is_wide(s.min, s.max, s.median));
        if s.wide {
            prop_assert!(s.max - s.min > TRUST_SPREAD * s.median, "{:?}", s);
        }
    }

    #[test]
    fn the_interval_holds_the_mean(values in prop::collection::vec(any::<f64>(), 0..20)) {
        if let Some(s) = spread(&values) {
            let mean = s.mean.unwrap();
            prop_assert!(s.min <= mean && mean <= s.max, "{:?}", s);
            match (s.ci95_low, s.ci95_high) {
                (Some(low), Some(high)) => {
                    prop_assert!(s.samples >= 2);
                    prop_assert!(low <= mean && mean <= high, "{:?}", s);
                }
                (None, None) => prop_assert_eq!(s.samples, 1),
                _ => prop_assert!(false, "one end without the other: {:?}", s),
            }
        }
    }

    #[test]
    fn the_interval_narrows_with_more_samples_alike(
        values in prop::collection::vec(-1e12..1e12f64, 2..20),
    ) {
        // The same values twice over: the same mean from twice the samples.
        let twice = [values.clone(), values.clone()].concat();
        let (mean, ci) = ci95(&values);
        let (mean2, ci2) = ci95(&twice);
        let ((low, high), (low2, high2)) = (ci.unwrap(), ci2.unwrap());
        prop_assert!((mean - mean2).abs() <= 1e-9 * mean.abs().max(1.0));
        prop_assert!(high2 - low2 <= high - low, "{} > {}", high2 - low2, high - low);
        if high > low {
            prop_assert!(high2 - low2 < high - low);
        }
    }

    #[test]
    fn constant_samples_have_a_zero_width_interval(v in any::<f64>(), n in 2usize..20) {
        prop_assume!(v.is_finite());
        let s = spread(&vec![v; n]).unwrap();
        prop_assert_eq!(s.mean, Some(v));
        prop_assert_eq!((s.ci95_low, s.ci95_high), (Some(v), Some(v)));
        prop_assert!(s.converged(), "{:?}", s);
    }
}

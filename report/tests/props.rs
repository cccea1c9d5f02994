//! Properties of the statistics over any floats (NaN, infinities, negatives included).
//!
//! `PROPTEST_CASES=10000 cargo test -p podperf-report --test props` for a longer run.

use podperf_report::{is_wide, spread, TRUST_SPREAD};
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
}

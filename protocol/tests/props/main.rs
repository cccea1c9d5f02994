//! Property tests of the wire contract: decoding any bytes or any JSON into any wire message never
//! panics (it is a value or a typed `serde_json` error), validation never panics and agrees with
//! an independent model of the bounds, errors name a real field, and valid values round-trip.
//!
//! `PROPTEST_CASES=10000 cargo test -p podperf-protocol --test props` for a longer run.

mod decode;
mod defaults;
mod params;

use decode::{any_json, decode_all, mutate, mutation, nasty_string, valid_examples};
use params::{any_params, model_valid, PARAM_FIELDS};
use podperf_protocol::api::{ApiError, ErrorCode};
use podperf_protocol::job::{IpFamily, JobParams, JobSpec, Target};
use podperf_protocol::names::is_valid_worker_id;
use podperf_protocol::outcome::JobState;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn decoding_arbitrary_json_never_panics(v in any_json()) {
        decode_all(&serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn decoding_near_valid_messages_never_panics(
        which in any::<usize>(),
        muts in prop::collection::vec(mutation(), 1..4),
        cut in any::<usize>(),
    ) {
        let examples = valid_examples();
        let mut v = examples[which % examples.len()].clone();
        for m in &muts {
            mutate(&mut v, m);
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        decode_all(&bytes);
        // Truncated anywhere: still no panic.
        decode_all(&bytes[..cut % (bytes.len() + 1)]);
    }

    #[test]
    fn validation_agrees_with_the_bounds_and_names_a_param_field(p in any_params()) {
        let r = p.validate();
        prop_assert_eq!(r.is_ok(), model_valid(&p), "{:?} → {:?}", p, r);
        if let Err(e) = r {
            prop_assert!(PARAM_FIELDS.contains(&e.field.as_str()), "field {:?}", e.field);
            prop_assert!(!e.message.is_empty());
        }
        let _ = p.nominal_duration(); // no overflow panic on any input
    }

    #[test]
    fn valid_params_round_trip_and_invalid_ones_are_refused_after_decoding(p in any_params()) {
        let json = serde_json::to_string(&p).unwrap();
        let back: JobParams = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &p);
        prop_assert_eq!(back.validate().is_ok(), model_valid(&p));
    }

    #[test]
    fn specs_with_hostile_names_validate_without_panicking(
        source in nasty_string(),
        target in nasty_string(),
        as_worker in any::<bool>(),
        p in any_params(),
        timeout_s in prop::option::of(any::<u32>()),
        family in prop::option::of(prop::sample::select(&IpFamily::ALL[..])),
    ) {
        let target = if as_worker {
            Some(Target::Worker(target))
        } else {
            target.parse().ok().map(Target::Address)
        };
        let spec = JobSpec { source, target, params: p, family, timeout_s };
        let fields = ["source", "target", "target.worker", "timeout_s", "family"];
        match spec.validate() {
            Ok(()) => {
                prop_assert!(!spec.source.is_empty());
                if let (Some(Target::Address(ip)), Some(f)) = (&spec.target, spec.family) {
                    prop_assert_eq!(IpFamily::of(*ip), f, "an address of the other family");
                }
                prop_assert!(model_valid(&spec.params));
                let json = serde_json::to_string(&spec).unwrap();
                prop_assert_eq!(serde_json::from_str::<JobSpec>(&json).unwrap(), spec);
            }
            Err(e) => prop_assert!(
                fields.contains(&e.field.as_str()) || PARAM_FIELDS.contains(&e.field.as_str()),
                "unexpected field {:?}", e.field
            ),
        }
    }

    #[test]
    fn valid_worker_ids_are_single_subject_tokens(id in nasty_string()) {
        if is_valid_worker_id(&id) {
            prop_assert!(!id.is_empty() && id.len() <= 128);
            prop_assert!(!id.contains(['.', '*', '>', ' ', '\t', '\n', '\r', '\0']));
            prop_assert!(id.is_ascii());
        }
    }

    #[test]
    fn error_codes_and_states_decode_only_from_their_names(s in nasty_string()) {
        let quoted = serde_json::to_string(&s).unwrap();
        if let Ok(code) = serde_json::from_str::<ErrorCode>(&quoted) {
            prop_assert_eq!(code.as_str(), s.as_str());
        }
        match JobState::parse(&s) {
            Some(st) => prop_assert_eq!(st.as_str(), s.as_str()),
            None => prop_assert!(serde_json::from_str::<JobState>(&quoted).is_err()),
        }
        let e = ApiError::new(ErrorCode::InvalidParam, s.clone()).with_field(s);
        let _ = e.to_string();
    }
}

#[test]
fn every_example_decodes_as_something() {
    for v in valid_examples() {
        let n = decode_all(&serde_json::to_vec(&v).unwrap());
        assert!(n > 0, "no type decodes {v}");
    }
}

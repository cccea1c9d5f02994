//! The wire format of the types with defaults (job parameters, the matrix request): what an omitted
//! field decodes to, and how a value serialises. The expected values are literals taken from the
//! wire format as it was when the defaults were per-field functions, so a change of a default or
//! of the field order shows here.

use podperf_protocol::job::{JobParams, JobSpec};
use podperf_protocol::run::MatrixRequest;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use test_case::test_case;

/// The default of each omitted field, per `kind` (`None`: omitted stays omitted).
fn param_default(kind: &str, field: &str) -> Option<Value> {
    let v = match (kind, field) {
        ("ping", "count") => json!(5),
        ("ping", "interval_ms") => json!(200),
        ("ping", "size_bytes") => json!(56),
        ("traceroute", "max_hops") => json!(30),
        ("traceroute", "protocol") => json!("udp"),
        ("iperf3", "duration_s") => json!(10),
        ("iperf3", "parallel") => json!(1),
        ("iperf3", "protocol") => json!("tcp"),
        ("iperf3", "bitrate_bps") => return None,
        ("iperf3", "reverse") => json!(false),
        ("noop", "sleep_ms") => json!(0),
        ("sweep", "targets") => json!("all"),
        ("sweep", "count") => json!(5),
        ("sweep", "interval_ms") => json!(100),
        ("latency", "protocol") => json!("tcp"),
        ("latency", "duration_s") => json!(5),
        ("latency", "message_size_bytes") => json!(64),
        ("mtu", "max_hops") => json!(30),
        _ => panic!("no default known for {kind}.{field}"),
    };
    Some(v)
}

fn matrix_default(field: &str) -> Value {
    match field {
        "mesh" => json!(false),
        "samples" => json!(3),
        "ping_count" => json!(20),
        "iperf3_duration_s" => json!(5),
        "udp" => json!(false),
        "udp_bitrate_bps" => json!(1_000_000_000u64),
        "traceroute" => json!(true),
        "latency" => json!(true),
        "latency_duration_s" => json!(1),
        "mtu" => json!(true),
        _ => panic!("no default known for matrix.{field}"),
    }
}

#[test_case(
    r#"{"kind":"ping"}"#,
    r#"{"kind":"ping","count":5,"interval_ms":200,"size_bytes":56}"#
 ; "ping, all omitted")]
#[test_case(
    r#"{"kind":"ping","interval_ms":1000}"#,
    r#"{"kind":"ping","count":5,"interval_ms":1000,"size_bytes":56}"#
 ; "ping, interval given")]
#[test_case(
    r#"{"kind":"latency"}"#,
    r#"{"kind":"latency","protocol":"tcp","duration_s":5,"message_size_bytes":64}"#
 ; "latency, all omitted")]
#[test_case(r#"{"kind":"mtu"}"#, r#"{"kind":"mtu","max_hops":30}"# ; "mtu, all omitted")]
#[test_case(
    r#"{"kind":"traceroute"}"#,
    r#"{"kind":"traceroute","max_hops":30,"protocol":"udp"}"#
 ; "traceroute, all omitted")]
#[test_case(
    r#"{"protocol":"icmp","kind":"traceroute"}"#,
    r#"{"kind":"traceroute","max_hops":30,"protocol":"icmp"}"#
 ; "traceroute, protocol given")]
#[test_case(
    r#"{"kind":"iperf3"}"#,
    r#"{"kind":"iperf3","duration_s":10,"parallel":1,"protocol":"tcp","reverse":false}"#
 ; "iperf3, all omitted")]
#[test_case(r#"{"kind":"iperf3","protocol":"udp","bitrate_bps":5}"#,
            r#"{"kind":"iperf3","duration_s":10,"parallel":1,"protocol":"udp","bitrate_bps":5,"reverse":false}"# ; "iperf3 udp with a bitrate")]
#[test_case(
    r#"{"kind":"iperf3","reverse":true,"parallel":4}"#,
    r#"{"kind":"iperf3","duration_s":10,"parallel":4,"protocol":"tcp","reverse":true}"#
 ; "iperf3 reverse, parallel given")]
#[test_case(r#"{"kind":"noop"}"#, r#"{"kind":"noop","sleep_ms":0}"# ; "noop, all omitted")]
fn params_with_omitted_fields_decode_to_the_defaults(input: &str, expected: &str) {
    let p: JobParams = serde_json::from_str(input).unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), expected);
    assert_eq!(serde_json::from_str::<JobParams>(expected).unwrap(), p);
}

#[test]
fn a_spec_with_omitted_fields_decodes_to_the_defaults() {
    let input =
        r#"{"source":"w1","target":{"worker":"w2"},"params":{"kind":"iperf3","protocol":"udp"}}"#;
    let expected = r#"{"source":"w1","target":{"worker":"w2"},"params":{"kind":"iperf3","duration_s":10,"parallel":1,"protocol":"udp","reverse":false}}"#;
    let s: JobSpec = serde_json::from_str(input).unwrap();
    assert_eq!(serde_json::to_string(&s).unwrap(), expected);
    assert_eq!(s.timeout_s, None);
}

#[test_case("{}",
            r#"{"mesh":false,"samples":3,"ping_count":20,"iperf3_duration_s":5,"udp":false,"udp_bitrate_bps":1000000000,"traceroute":true,"latency":true,"latency_duration_s":1,"mtu":true}"# ; "matrix, all omitted")]
#[test_case(r#"{"mesh":true,"traceroute":false}"#,
            r#"{"mesh":true,"samples":3,"ping_count":20,"iperf3_duration_s":5,"udp":false,"udp_bitrate_bps":1000000000,"traceroute":false,"latency":true,"latency_duration_s":1,"mtu":true}"# ; "matrix, mesh and traceroute given")]
#[test_case(r#"{"samples":7,"udp":true}"#,
            r#"{"mesh":false,"samples":7,"ping_count":20,"iperf3_duration_s":5,"udp":true,"udp_bitrate_bps":1000000000,"traceroute":true,"latency":true,"latency_duration_s":1,"mtu":true}"# ; "matrix, samples and udp given")]
fn a_matrix_request_with_omitted_fields_decodes_to_the_defaults(input: &str, expected: &str) {
    let r: MatrixRequest = serde_json::from_str(input).unwrap();
    assert_eq!(serde_json::to_string(&r).unwrap(), expected);
    assert_eq!(r, serde_json::from_str::<MatrixRequest>(expected).unwrap());
    if input == "{}" {
        assert_eq!(r, MatrixRequest::default());
    }
}

#[test]
fn unknown_matrix_fields_are_rejected() {
    let err = serde_json::from_str::<MatrixRequest>(r#"{"samples":2,"burst":true}"#).unwrap_err();
    assert!(err.to_string().contains("burst"), "{err}");
}

fn any_matrix_request() -> impl Strategy<Value = MatrixRequest> {
    (
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<bool>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(
            |(mesh, samples, ping_count, iperf3_duration_s, udp, udp_bitrate_bps, traceroute)| {
                MatrixRequest {
                    mesh,
                    samples,
                    ping_count,
                    iperf3_duration_s,
                    udp,
                    udp_bitrate_bps,
                    traceroute,
                    ..MatrixRequest::default()
                }
            },
        )
}

/// `object` without the fields that `mask` picks (bit i: the i-th field), and the same object with
/// each of those fields set to `default(field)` instead (or left out where that is `None`).
fn omit(
    object: &Map<String, Value>,
    mask: u16,
    default: impl Fn(&str) -> Option<Value>,
) -> (Value, Value) {
    let (mut sent, mut expected) = (Map::new(), Map::new());
    for (i, (k, v)) in object.iter().enumerate() {
        if k == "kind" || mask & (1 << i) == 0 {
            sent.insert(k.clone(), v.clone());
            expected.insert(k.clone(), v.clone());
        } else if let Some(d) = default(k) {
            expected.insert(k.clone(), d);
        }
    }
    (Value::Object(sent), Value::Object(expected))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn params_round_trip_and_omitted_fields_take_the_defaults(
        p in crate::params::any_params(),
        mask in any::<u16>(),
    ) {
        let full = serde_json::to_value(&p).unwrap();
        let back: JobParams = serde_json::from_value(full.clone()).unwrap();
        prop_assert_eq!(&back, &p);
        let object = full.as_object().unwrap();
        let kind = object["kind"].as_str().unwrap().to_owned();
        let (sent, expected) = omit(object, mask, |f| param_default(&kind, f));
        let decoded: JobParams = serde_json::from_value(sent.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&decoded).unwrap(), expected, "sent {}", sent);
    }

    #[test]
    fn matrix_requests_round_trip_and_omitted_fields_take_the_defaults(
        r in any_matrix_request(),
        mask in any::<u16>(),
    ) {
        let full = serde_json::to_value(&r).unwrap();
        prop_assert_eq!(&serde_json::from_value::<MatrixRequest>(full.clone()).unwrap(), &r);
        let (sent, expected) = omit(full.as_object().unwrap(), mask, |f| Some(matrix_default(f)));
        let decoded: MatrixRequest = serde_json::from_value(sent.clone()).unwrap();
        prop_assert_eq!(serde_json::to_value(&decoded).unwrap(), expected, "sent {}", sent);
    }
}

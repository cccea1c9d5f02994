//! The run's pass/fail gate: pod ↔ pod across nodes against node ↔ node, in TCP bandwidth
//! (`--tolerance`, k8s-netperf's `--tcp-tolerance`) and in RTT (`--max-rtt-ratio`).

use podperf_protocol::run::{GateCheck, MatrixRequest, OverlayCost, Verdict, VerdictStatus};

/// The verdict of the gates `req` sets, on the run's overlay cost (the ratios of pod ↔ pod
/// across nodes to node ↔ node medians, [`crate::overlay_cost`]); `None` when it sets none. A
/// check whose ratio could not be had (its rows not both measured) fails: a gate that cannot be
/// checked does not pass.
pub fn verdict(req: &MatrixRequest, cost: Option<&OverlayCost>) -> Option<Verdict> {
    let mut checks = Vec::new();
    if let Some(tolerance) = req.tolerance_percent {
        checks.push(tcp_tolerance(
            tolerance,
            cost.and_then(|c| c.bandwidth_ratio),
        ));
    }
    if let Some(limit) = req.max_rtt_ratio {
        checks.push(rtt_ratio(limit, cost.and_then(|c| c.rtt_ratio)));
    }
    if checks.is_empty() {
        return None;
    }
    let fail = checks.iter().any(|c| c.status == VerdictStatus::Fail);
    Some(Verdict {
        status: if fail {
            VerdictStatus::Fail
        } else {
            VerdictStatus::Pass
        },
        checks,
    })
}

fn status(pass: bool) -> VerdictStatus {
    if pass {
        VerdictStatus::Pass
    } else {
        VerdictStatus::Fail
    }
}

/// Fails when the pod bandwidth is more than `tolerance` percent below the node bandwidth:
/// (node − pod) / node × 100 = (1 − pod / node) × 100 > tolerance.
fn tcp_tolerance(tolerance: f64, ratio: Option<f64>) -> GateCheck {
    let check = "tcp_tolerance".to_string();
    let Some(ratio) = ratio else {
        return GateCheck {
            check,
            status: VerdictStatus::Fail,
            limit: tolerance,
            measured: None,
            message: "cannot check the TCP bandwidth: pod ↔ pod across nodes and node ↔ node \
                      were not both measured"
                .into(),
        };
    };
    let below = (1.0 - ratio) * 100.0;
    let pass = below <= tolerance;
    let message = format!(
        "pod ↔ pod across nodes TCP bandwidth is {below:.1} % below node ↔ node (tolerance \
         {tolerance} %): {}",
        if pass { "pass" } else { "FAIL" }
    );
    GateCheck {
        check,
        status: status(pass),
        limit: tolerance,
        measured: Some(below),
        message,
    }
}

/// Fails when the pod RTT is more than `limit` times the node RTT.
fn rtt_ratio(limit: f64, ratio: Option<f64>) -> GateCheck {
    let check = "max_rtt_ratio".to_string();
    let Some(ratio) = ratio else {
        return GateCheck {
            check,
            status: VerdictStatus::Fail,
            limit,
            measured: None,
            message: "cannot check the RTT: pod ↔ pod across nodes and node ↔ node were not \
                      both measured"
                .into(),
        };
    };
    let pass = ratio <= limit;
    let message = format!(
        "pod ↔ pod across nodes RTT is {ratio:.2}× node ↔ node (at most {limit}×): {}",
        if pass { "pass" } else { "FAIL" }
    );
    GateCheck {
        check,
        status: status(pass),
        limit,
        measured: Some(ratio),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::class_row;
    use crate::overlay::overlay_cost;
    use podperf_protocol::run::{ClassReport, PathClass};
    use test_case::test_case;

    /// The verdict on `classes` as a report makes it (through their overlay cost).
    fn verdict(req: &MatrixRequest, classes: &[ClassReport]) -> Option<Verdict> {
        super::verdict(req, overlay_cost(classes).as_ref())
    }

    fn classes(pod: (f64, f64), node: (f64, f64)) -> Vec<ClassReport> {
        let row = |class, (bps, rtt): (f64, f64)| class_row(class, &[bps], &[rtt]);
        vec![
            row(PathClass::PodCrossNode, pod),
            row(PathClass::NodeToNode, node),
        ]
    }

    fn req(tolerance: Option<f64>, ratio: Option<f64>) -> MatrixRequest {
        MatrixRequest {
            tolerance_percent: tolerance,
            max_rtt_ratio: ratio,
            ..MatrixRequest::default()
        }
    }

    #[test]
    fn no_gate_no_verdict() {
        assert_eq!(
            verdict(&req(None, None), &classes((8e9, 0.4), (10e9, 0.2))),
            None
        );
    }

    // 8 Gbit/s against 10: 20 % below.
    #[test_case(25.0, VerdictStatus::Pass ; "within the tolerance")]
    #[test_case(20.0, VerdictStatus::Pass ; "exactly at it")]
    #[test_case(19.9, VerdictStatus::Fail ; "beyond it")]
    #[test_case(0.0, VerdictStatus::Fail ; "no tolerance")]
    fn tcp_tolerance_is_k8s_netperf_s(tolerance: f64, expect: VerdictStatus) {
        let v = verdict(
            &req(Some(tolerance), None),
            &classes((8e9, 0.4), (10e9, 0.2)),
        )
        .unwrap();
        assert_eq!(v.status, expect);
        let c = &v.checks[0];
        assert_eq!(
            (c.check.as_str(), c.status, c.limit),
            ("tcp_tolerance", expect, tolerance)
        );
        assert!((c.measured.unwrap() - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_faster_pod_path_passes_any_tolerance() {
        let v = verdict(&req(Some(0.0), None), &classes((12e9, 0.4), (10e9, 0.2))).unwrap();
        assert_eq!(v.status, VerdictStatus::Pass);
        assert!(v.checks[0].measured.unwrap() < 0.0);
    }

    #[test_case(2.0, VerdictStatus::Pass ; "exactly at the ratio")]
    #[test_case(1000.0, VerdictStatus::Pass ; "far above")]
    #[test_case(1.99, VerdictStatus::Fail ; "below it")]
    #[test_case(0.0001, VerdictStatus::Fail ; "far below")]
    fn max_rtt_ratio(limit: f64, expect: VerdictStatus) {
        let v = verdict(&req(None, Some(limit)), &classes((8e9, 0.4), (10e9, 0.2))).unwrap();
        assert_eq!(
            (v.status, v.checks[0].check.as_str()),
            (expect, "max_rtt_ratio")
        );
        assert!((v.checks[0].measured.unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn both_checks_and_one_failing_fails_the_run() {
        let v = verdict(
            &req(Some(50.0), Some(1.5)),
            &classes((8e9, 0.4), (10e9, 0.2)),
        )
        .unwrap();
        let got: Vec<_> = v.checks.iter().map(|c| c.status).collect();
        assert_eq!(got, [VerdictStatus::Pass, VerdictStatus::Fail]);
        assert_eq!(v.status, VerdictStatus::Fail);
    }

    #[test]
    fn a_gate_without_both_rows_fails_and_says_why() {
        let mut only_pods = classes((8e9, 0.4), (10e9, 0.2));
        only_pods.pop();
        let v = verdict(&req(Some(100.0), Some(1000.0)), &only_pods).unwrap();
        assert_eq!(v.status, VerdictStatus::Fail);
        for c in &v.checks {
            assert_eq!((c.status, c.measured), (VerdictStatus::Fail, None));
            assert!(c.message.contains("not both measured"), "{}", c.message);
        }
    }
}

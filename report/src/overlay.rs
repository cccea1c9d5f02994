//! What the overlay network costs: pods across nodes against node ↔ node (host network).

use podperf_protocol::run::{ClassReport, OverlayCost, PathClass, Spread};

/// The ratios of the pod-across-nodes class's medians to the node ↔ node class's. `None` unless
/// both classes are in `classes`; a ratio is `None` when either median is missing or the node's is
/// not above zero.
pub fn overlay_cost(classes: &[ClassReport]) -> Option<OverlayCost> {
    let get = |c: PathClass| classes.iter().find(|r| r.class == c).map(|r| &r.figures);
    let (pod, node) = (get(PathClass::PodCrossNode)?, get(PathClass::NodeToNode)?);
    Some(OverlayCost {
        bandwidth_ratio: ratio(&pod.tcp_bits_per_second, &node.tcp_bits_per_second),
        rtt_ratio: ratio(&pod.rtt_avg_ms, &node.rtt_avg_ms),
    })
}

fn ratio(pod: &Option<Spread>, node: &Option<Spread>) -> Option<f64> {
    match (pod, node) {
        (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::class_row as class;

    #[test]
    fn ratios_of_the_medians() {
        let classes = [
            class(PathClass::PodSameNode, &[40e9], &[0.05]),
            class(PathClass::NodeToNode, &[9e9, 10e9, 11e9], &[0.25]),
            class(PathClass::PodCrossNode, &[8e9, 8.4e9, 9e9], &[0.42]),
        ];
        let cost = overlay_cost(&classes).unwrap();
        assert_eq!(cost.bandwidth_ratio, Some(0.84));
        assert_eq!(cost.rtt_ratio, Some(1.68));
    }

    #[test]
    fn needs_both_classes() {
        let pod = class(PathClass::PodCrossNode, &[8e9], &[0.4]);
        let node = class(PathClass::NodeToNode, &[10e9], &[0.2]);
        assert_eq!(overlay_cost(std::slice::from_ref(&pod)), None);
        assert_eq!(overlay_cost(std::slice::from_ref(&node)), None);
        assert_eq!(overlay_cost(&[]), None);
        assert!(overlay_cost(&[node, pod]).is_some());
    }

    #[test]
    fn a_ratio_is_missing_without_both_medians_or_with_a_zero_baseline() {
        let pod = class(PathClass::PodCrossNode, &[8e9], &[]);
        let node = class(PathClass::NodeToNode, &[0.0], &[0.2]);
        let cost = overlay_cost(&[pod, node]).unwrap();
        assert_eq!(
            cost,
            OverlayCost {
                bandwidth_ratio: None,
                rtt_ratio: None
            }
        );
    }
}

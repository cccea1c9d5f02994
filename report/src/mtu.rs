//! Overlay MTU faults: a pod path whose MTU the node path cannot carry once encapsulated (VXLAN:
//! 50 bytes), or full-size packets with DF set lost where small ones pass (a black hole).
//!
//! The pod side's MTU is the larger of its path MTU and its own interface's MTU: a pod interface
//! of 1500 on a 1450 overlay is the classic misconfiguration even where ICMP "fragmentation
//! needed" makes tracepath find 1450 (every flow then depends on path-MTU discovery, and dies
//! where ICMP is filtered).

use podperf_protocol::run::{ClassReport, MtuProblem, PathClass, VXLAN_OVERHEAD_BYTES};

/// The MTU faults the classes show: the pod-across-nodes path MTU above the node path MTU − 50,
/// and every class with a black hole.
pub fn mtu_problems(classes: &[ClassReport]) -> Vec<MtuProblem> {
    let mut out = Vec::new();
    let get = |c: PathClass| classes.iter().find(|r| r.class == c).map(|r| &r.figures);
    let pod = get(PathClass::PodCrossNode).and_then(|f| f.path_mtu_bytes.max(f.local_mtu_bytes));
    let node = get(PathClass::NodeToNode).and_then(|f| f.path_mtu_bytes);
    if let (Some(pod), Some(node)) = (pod, node) {
        let carried = node.saturating_sub(VXLAN_OVERHEAD_BYTES);
        if pod > carried {
            out.push(MtuProblem {
                kind: "pod_mtu_exceeds_underlay".into(),
                message: format!(
                    "pod MTU {pod} > node path MTU {node} − {VXLAN_OVERHEAD_BYTES} \
                     (VXLAN) = {carried}: full-size pod packets cannot cross the overlay whole"
                ),
                pod_path_mtu_bytes: Some(pod),
                node_path_mtu_bytes: Some(node),
            });
        }
    }
    for c in classes.iter().filter(|c| c.figures.mtu_black_hole) {
        out.push(MtuProblem {
            kind: "black_hole".into(),
            message: format!(
                "{}: packets of the path MTU with DF set are lost while small ones pass",
                c.class.label()
            ),
            pod_path_mtu_bytes: c.figures.path_mtu_bytes,
            node_path_mtu_bytes: node,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use podperf_protocol::run::Figures;

    fn class(class: PathClass, mtu: u32, black_hole: bool) -> ClassReport {
        ClassReport {
            class,
            family: Default::default(),
            pairs: 1,
            sampling: None,
            figures: Figures {
                path_mtu_bytes: Some(mtu),
                mtu_black_hole: black_hole,
                ..Figures::default()
            },
        }
    }

    #[test]
    fn a_flannel_vxlan_pod_mtu_of_1450_is_fine_and_1500_is_not() {
        let node = class(PathClass::NodeToNode, 1500, false);
        let ok = [class(PathClass::PodCrossNode, 1450, false), node.clone()];
        assert!(mtu_problems(&ok).is_empty());
        let bad = [class(PathClass::PodCrossNode, 1500, false), node];
        let p = mtu_problems(&bad);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, "pod_mtu_exceeds_underlay");
        assert!(
            p[0].message.contains("1500 > node path MTU 1500 − 50"),
            "{}",
            p[0].message
        );
    }

    #[test]
    fn a_pod_interface_above_the_overlay_is_named_even_when_pmtud_finds_1450() {
        let mut pod = class(PathClass::PodCrossNode, 1450, false);
        pod.figures.local_mtu_bytes = Some(1500);
        let p = mtu_problems(&[pod, class(PathClass::NodeToNode, 1500, false)]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].pod_path_mtu_bytes, Some(1500));
    }

    #[test]
    fn a_black_hole_is_named_with_its_class() {
        let classes = [
            class(PathClass::PodCrossNode, 1450, true),
            class(PathClass::NodeToNode, 1500, false),
        ];
        let p = mtu_problems(&classes);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, "black_hole");
        assert!(p[0].message.starts_with("pod ↔ pod, across nodes"));
    }

    #[test]
    fn nothing_without_both_classes() {
        assert!(mtu_problems(&[class(PathClass::PodCrossNode, 9000, false)]).is_empty());
    }
}

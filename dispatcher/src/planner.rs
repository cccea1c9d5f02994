//! Plans a matrix run from the live workers: which pairs to measure (one per path class, or every
//! ordered pair with `mesh`: pod ↔ pod, node ↔ node, and across nodes pod → node and node → pod),
//! and the rounds they run in — each round a set of pairs on disjoint
//! nodes, built from a round-robin tournament over the nodes, so a mesh of N nodes needs about
//! 2(N−1) rounds of one test instead of N(N−1). Pure logic.

use std::collections::{BTreeMap, HashSet};

use podperf_protocol::run::PathClass;
use podperf_protocol::worker::WorkerInfo;

/// A pair to measure, and its round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned<'a> {
    pub class: PathClass,
    pub source: &'a WorkerInfo,
    pub target: &'a WorkerInfo,
    pub round: u32,
}

impl<'a> Planned<'a> {
    fn nodes(&self) -> [&'a str; 2] {
        [
            self.source.node_name.as_str(),
            self.target.node_name.as_str(),
        ]
    }
}

/// The pairs to measure among `workers`, with rounds assigned, in round order.
pub fn plan<'a>(workers: &[&'a WorkerInfo], mesh: bool) -> Vec<Planned<'a>> {
    let pairs = if mesh {
        mesh_pairs(workers)
    } else {
        class_pairs(workers)
    };
    assign_rounds(pairs)
}

/// Every ordered pair of pod workers; of host-network workers on different nodes; and of a pod
/// worker and a host-network worker on different nodes, either way.
pub fn mesh_pairs<'a>(
    workers: &[&'a WorkerInfo],
) -> Vec<(PathClass, &'a WorkerInfo, &'a WorkerInfo)> {
    let mut out = Vec::new();
    for s in workers {
        for t in workers {
            if s.worker_id == t.worker_id {
                continue;
            }
            match classify(s, t) {
                Some(class) => out.push((class, *s, *t)),
                None => continue,
            }
        }
    }
    out
}

/// The class of a pair, if it is one the matrix measures.
fn classify(s: &WorkerInfo, t: &WorkerInfo) -> Option<PathClass> {
    match (s.host_network, t.host_network, s.node_name == t.node_name) {
        (false, false, true) => Some(PathClass::PodSameNode),
        (false, false, false) => Some(PathClass::PodCrossNode),
        (false, true, false) => Some(PathClass::PodToNode),
        (true, false, false) => Some(PathClass::NodeToPod),
        (true, true, false) => Some(PathClass::NodeToNode),
        // A host-network worker to a pod on its own node (or to itself) is no path the
        // matrix compares.
        _ => None,
    }
}

/// One pair per class: the first nodes in name order (pod → node: the first pod node's first
/// pod to the first other node's host worker; node → pod: the first host node to the first
/// other node's first pod); the same-node pair avoids the nodes of the cross-node pairs when it
/// can (so it can run in the same round).
pub fn class_pairs<'a>(
    workers: &[&'a WorkerInfo],
) -> Vec<(PathClass, &'a WorkerInfo, &'a WorkerInfo)> {
    let mut pods: BTreeMap<&str, Vec<&WorkerInfo>> = BTreeMap::new();
    let mut hosts: BTreeMap<&str, &WorkerInfo> = BTreeMap::new();
    for w in workers {
        if w.host_network {
            hosts.entry(&w.node_name).or_insert(w);
        } else {
            pods.entry(&w.node_name).or_default().push(w);
        }
    }
    for v in pods.values_mut() {
        v.sort_by(|a, b| a.pod_name.cmp(&b.pod_name));
    }
    let mut out = Vec::new();
    let pod_nodes: Vec<&str> = pods.keys().copied().collect();
    let mut cross_nodes: Vec<&str> = Vec::new();
    if let [a, b, ..] = pod_nodes.as_slice() {
        out.push((PathClass::PodCrossNode, pods[a][0], pods[b][0]));
        cross_nodes = vec![a, b];
    }
    let host_nodes: Vec<&str> = hosts.keys().copied().collect();
    if let Some(a) = pod_nodes.first() {
        if let Some(b) = host_nodes.iter().find(|b| *b != a) {
            out.push((PathClass::PodToNode, pods[a][0], hosts[b]));
        }
    }
    if let Some(a) = host_nodes.first() {
        if let Some(b) = pod_nodes.iter().find(|b| *b != a) {
            out.push((PathClass::NodeToPod, hosts[a], pods[b][0]));
        }
    }
    if let [a, b, ..] = host_nodes.as_slice() {
        out.push((PathClass::NodeToNode, hosts[a], hosts[b]));
    }
    let same = pods
        .iter()
        .filter(|(_, v)| v.len() >= 2)
        .min_by_key(|(n, _)| cross_nodes.contains(n));
    if let Some((_, v)) = same {
        out.insert(0, (PathClass::PodSameNode, v[0], v[1]));
    }
    out
}

/// Assigns rounds: pairs are ordered by a round-robin tournament over their nodes, then packed
/// greedily into rounds whose pairs touch disjoint nodes.
pub fn assign_rounds<'a>(
    pairs: Vec<(PathClass, &'a WorkerInfo, &'a WorkerInfo)>,
) -> Vec<Planned<'a>> {
    let mut nodes: Vec<&str> = pairs
        .iter()
        .flat_map(|(_, s, t)| [s.node_name.as_str(), t.node_name.as_str()])
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    let order = tournament_order(&nodes);
    let mut keyed: Vec<(usize, usize, Planned<'a>)> = pairs
        .into_iter()
        .enumerate()
        .map(|(i, (class, source, target))| {
            let key = (source.node_name.as_str(), target.node_name.as_str());
            let slot = order.iter().position(|k| *k == key).unwrap_or(usize::MAX);
            (
                slot,
                i,
                Planned {
                    class,
                    source,
                    target,
                    round: 0,
                },
            )
        })
        .collect();
    keyed.sort_by_key(|(slot, i, _)| (*slot, *i));
    let mut remaining: Vec<Planned<'a>> = keyed.into_iter().map(|(_, _, p)| p).collect();
    let mut out = Vec::with_capacity(remaining.len());
    let mut round = 0;
    while !remaining.is_empty() {
        let mut used: HashSet<&'a str> = HashSet::new();
        let mut rest = Vec::new();
        for mut p in remaining {
            let nodes = p.nodes();
            if nodes.iter().any(|n| used.contains(n)) {
                rest.push(p);
                continue;
            }
            used.extend(nodes);
            p.round = round;
            out.push(p);
        }
        remaining = rest;
        round += 1;
    }
    out
}

/// Ordered node pairs in round-robin-tournament order (circle method): every round of the
/// tournament is a perfect matching, played once in each direction; same-node "pairs" come in
/// one round of their own at the end.
fn tournament_order<'n>(nodes: &[&'n str]) -> Vec<(&'n str, &'n str)> {
    let mut ring: Vec<Option<&str>> = nodes.iter().map(|n| Some(*n)).collect();
    if ring.len() % 2 == 1 {
        ring.push(None); // a bye
    }
    let n = ring.len();
    let mut order = Vec::new();
    for _ in 0..n.saturating_sub(1) {
        let matches: Vec<(&str, &str)> = (0..n / 2)
            .filter_map(|i| Some((ring[i]?, ring[n - 1 - i]?)))
            .collect();
        order.extend(matches.iter().map(|(a, b)| (*a, *b)));
        order.extend(matches.iter().map(|(a, b)| (*b, *a)));
        ring[1..].rotate_right(1);
    }
    order.extend(nodes.iter().map(|n| (*n, *n)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(node: usize, pod: usize, host: bool) -> WorkerInfo {
        let pod_name = if host {
            format!("host-{node}")
        } else {
            format!("pod-{node}-{pod}")
        };
        WorkerInfo {
            worker_id: format!("id-{pod_name}"),
            pod_name,
            pod_namespace: None,
            pod_ip: "10.0.0.1".parse().unwrap(),
            node_name: format!("node-{node}"),
            node_ip: None,
            pod_ips: vec![],
            node_ips: vec![],
            host_network: host,
            tools: vec![],
            iperf3_port: 5201,
            sockperf_port: 11111,
            max_concurrent_jobs: 1,
            started_at_ms: 0,
            version: "0".into(),
        }
    }

    /// `nodes` × `pods` pod workers plus one host-network worker per node.
    fn cluster(nodes: usize, pods: usize) -> Vec<WorkerInfo> {
        let mut v = Vec::new();
        for n in 0..nodes {
            v.extend((0..pods).map(|p| worker(n, p, false)));
            v.push(worker(n, 0, true));
        }
        v
    }

    fn refs(v: &[WorkerInfo]) -> Vec<&WorkerInfo> {
        v.iter().collect()
    }

    fn rounds(plan: &[Planned]) -> u32 {
        plan.iter().map(|p| p.round + 1).max().unwrap_or(0)
    }

    fn assert_rounds_are_disjoint(plan: &[Planned]) {
        for r in 0..rounds(plan) {
            let mut seen = HashSet::new();
            for p in plan.iter().filter(|p| p.round == r) {
                let mut nodes = p.nodes().to_vec();
                nodes.dedup();
                for n in nodes {
                    assert!(seen.insert(n), "round {r} uses {n} twice: {plan:#?}");
                }
            }
        }
    }

    #[test]
    fn one_pair_per_class_on_two_nodes() {
        let ws = cluster(2, 2);
        let plan = plan(&refs(&ws), false);
        let mut got: Vec<(PathClass, &str, &str)> = plan
            .iter()
            .map(|p| {
                (
                    p.class,
                    p.source.pod_name.as_str(),
                    p.target.pod_name.as_str(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (PathClass::PodSameNode, "pod-0-0", "pod-0-1"),
                (PathClass::PodCrossNode, "pod-0-0", "pod-1-0"),
                (PathClass::PodToNode, "pod-0-0", "host-1"),
                (PathClass::NodeToPod, "host-0", "pod-1-0"),
                (PathClass::NodeToNode, "host-0", "host-1"),
            ]
        );
        assert_rounds_are_disjoint(&plan);
        assert_eq!(rounds(&plan), 5, "all five touch node-0");
    }

    #[test]
    fn the_same_node_pair_avoids_the_cross_node_pair_when_it_can() {
        let ws = cluster(3, 2);
        let plan = plan(&refs(&ws), false);
        let same = plan
            .iter()
            .find(|p| p.class == PathClass::PodSameNode)
            .unwrap();
        assert_eq!(same.source.node_name, "node-2");
        assert_eq!(same.round, 0, "runs beside the cross-node pair");
        assert_rounds_are_disjoint(&plan);
    }

    #[test]
    fn host_workers_on_one_node_only_make_one_quadrant_each() {
        // Pods on node-0 and node-1, a host worker on node-1 only.
        let mut ws = cluster(2, 1);
        ws.retain(|w| !(w.host_network && w.node_name == "node-0"));
        let plan = plan(&refs(&ws), false);
        let got: Vec<(PathClass, &str, &str)> = plan
            .iter()
            .map(|p| {
                (
                    p.class,
                    p.source.pod_name.as_str(),
                    p.target.pod_name.as_str(),
                )
            })
            .filter(|(c, _, _)| matches!(c, PathClass::PodToNode | PathClass::NodeToPod))
            .collect();
        assert_eq!(
            got,
            vec![
                (PathClass::PodToNode, "pod-0-0", "host-1"),
                (PathClass::NodeToPod, "host-1", "pod-0-0"),
            ]
        );
    }

    #[test]
    fn a_cluster_without_host_workers_or_second_node_plans_what_it_can() {
        let ws: Vec<WorkerInfo> = (0..2).map(|p| worker(0, p, false)).collect();
        let plan = plan(&refs(&ws), false);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].class, PathClass::PodSameNode);
        assert!(super::plan(&[], false).is_empty());
    }

    #[test]
    fn a_mesh_covers_every_ordered_pair_once_in_about_2n_minus_2_rounds() {
        for nodes in 2..=8 {
            let ws: Vec<WorkerInfo> = (0..nodes).map(|n| worker(n, 0, false)).collect();
            let plan = plan(&refs(&ws), true);
            assert_eq!(plan.len(), nodes * (nodes - 1), "every ordered pair");
            let unique: HashSet<(&str, &str)> = plan
                .iter()
                .map(|p| (p.source.pod_name.as_str(), p.target.pod_name.as_str()))
                .collect();
            assert_eq!(unique.len(), plan.len(), "each once");
            assert_rounds_are_disjoint(&plan);
            let bound = if nodes % 2 == 0 {
                2 * (nodes - 1)
            } else {
                2 * nodes
            };
            assert!(
                rounds(&plan) as usize <= bound,
                "{nodes} nodes: {} rounds",
                rounds(&plan)
            );
        }
    }

    #[test]
    fn a_4x4_mesh_with_host_workers_keeps_rounds_disjoint() {
        let ws = cluster(4, 4);
        let plan = plan(&refs(&ws), true);
        let pods = 16;
        // Pod pairs, host pairs, and pod → host and host → pod across nodes (16 × 3 each way).
        assert_eq!(plan.len(), pods * (pods - 1) + 4 * 3 + 2 * 16 * 3);
        assert_rounds_are_disjoint(&plan);
        let classes: HashSet<PathClass> = plan.iter().map(|p| p.class).collect();
        assert_eq!(
            classes.len(),
            PathClass::ALL.len(),
            "every class: {classes:?}"
        );
        for p in plan
            .iter()
            .filter(|p| p.source.host_network != p.target.host_network)
        {
            assert_ne!(p.source.node_name, p.target.node_name, "across nodes only");
        }
        let rounds_used = rounds(&plan);
        // Cross-node: 6 rounds (2(N-1)) × (16 pod pairs + 4 + 4 + 1 host pairs) per ordered
        // node pair; same-node: 12 per node, all nodes at once.
        assert!(rounds_used <= 6 * 25 + 12, "{rounds_used} rounds");
    }
}

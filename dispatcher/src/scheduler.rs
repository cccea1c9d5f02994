//! Which queued jobs may start now, perfSONAR-style: a bandwidth job (and a `latency` job, which
//! loads the path as much) holds its source and target nodes exclusively (and its server);
//! ping/traceroute/mtu share nodes with each other but not with a bandwidth job; `noop` is free.
//! Pure logic, no I/O.

use std::collections::{HashMap, HashSet};

use podperf_protocol::job::JobKind;

/// The resources a job holds while it is outstanding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    pub exclusive: Vec<String>,
    pub shared: Vec<String>,
    /// The iperf3 server (`ip:port`) the job tests against.
    pub server: Option<String>,
}

impl Claim {
    /// `source_node`/`target_node` name nodes (an address target stands for its own "node").
    pub fn for_job(
        kind: JobKind,
        source_node: &str,
        target_node: Option<&str>,
        server: Option<String>,
    ) -> Claim {
        let nodes: Vec<String> = std::iter::once(source_node)
            .chain(target_node)
            .map(str::to_string)
            .collect();
        match kind {
            JobKind::Iperf3 | JobKind::Latency => Claim {
                exclusive: dedup(nodes),
                shared: vec![],
                server,
            },
            JobKind::Ping | JobKind::Traceroute | JobKind::Sweep | JobKind::Mtu => Claim {
                exclusive: vec![],
                shared: dedup(nodes),
                server: None,
            },
            JobKind::Noop => Claim::default(),
        }
    }

    /// A sweep shares its source node and every target's node (latency probes share nodes).
    pub fn for_sweep<'a>(
        source_node: &'a str,
        target_nodes: impl Iterator<Item = &'a str>,
    ) -> Claim {
        let mut nodes: Vec<String> = std::iter::once(source_node)
            .chain(target_nodes)
            .map(str::to_string)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        Claim {
            exclusive: vec![],
            shared: nodes,
            server: None,
        }
    }

    fn nodes(&self) -> impl Iterator<Item = &String> {
        self.exclusive.iter().chain(&self.shared)
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.dedup();
    v
}

/// What is held right now.
#[derive(Debug, Default)]
pub struct Locks {
    exclusive: HashSet<String>,
    shared: HashMap<String, u32>,
    servers: HashSet<String>,
}

impl Locks {
    pub fn can_take(&self, c: &Claim) -> bool {
        let free = |n: &String| !self.exclusive.contains(n);
        c.exclusive
            .iter()
            .all(|n| free(n) && !self.shared.contains_key(n))
            && c.shared.iter().all(free)
            && c.server.as_ref().is_none_or(|s| !self.servers.contains(s))
    }

    /// Takes `c` (also when it conflicts: a restarted dispatcher re-takes what was running).
    pub fn take(&mut self, c: &Claim) {
        self.exclusive.extend(c.exclusive.iter().cloned());
        for n in &c.shared {
            *self.shared.entry(n.clone()).or_default() += 1;
        }
        if let Some(s) = &c.server {
            self.servers.insert(s.clone());
        }
    }

    pub fn release(&mut self, c: &Claim) {
        for n in &c.exclusive {
            self.exclusive.remove(n);
        }
        for n in &c.shared {
            if let Some(count) = self.shared.get_mut(n) {
                *count -= 1;
                if *count == 0 {
                    self.shared.remove(n);
                }
            }
        }
        if let Some(s) = &c.server {
            self.servers.remove(s);
        }
    }

    pub fn is_idle(&self) -> bool {
        self.exclusive.is_empty() && self.shared.is_empty() && self.servers.is_empty()
    }
}

/// Picks, in queue order, the claims that can start now. A job that cannot start reserves its
/// nodes, so later jobs on those nodes do not overtake it (no starvation of bandwidth tests).
/// The returned indices' claims have been taken.
pub fn pick<'a>(locks: &mut Locks, queue: impl IntoIterator<Item = &'a Claim>) -> Vec<usize> {
    let mut reserved: HashSet<&String> = HashSet::new();
    let mut picked = Vec::new();
    for (i, claim) in queue.into_iter().enumerate() {
        let blocked_by_earlier = claim.nodes().any(|n| reserved.contains(n));
        if !blocked_by_earlier && locks.can_take(claim) {
            locks.take(claim);
            picked.push(i);
        } else {
            reserved.extend(claim.nodes());
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bw(a: &str, b: &str) -> Claim {
        Claim::for_job(JobKind::Iperf3, a, Some(b), Some(format!("{b}:5201")))
    }
    fn ping(a: &str, b: &str) -> Claim {
        Claim::for_job(JobKind::Ping, a, Some(b), None)
    }

    #[test]
    fn bandwidth_tests_on_disjoint_nodes_run_together() {
        let mut locks = Locks::default();
        let q = [bw("n1", "n2"), bw("n3", "n4"), bw("n2", "n3")];
        assert_eq!(pick(&mut locks, &q), vec![0, 1]);
    }

    #[test]
    fn pings_share_but_not_with_bandwidth() {
        let mut locks = Locks::default();
        let q = [ping("n1", "n2"), ping("n1", "n2"), bw("n1", "n3")];
        assert_eq!(pick(&mut locks, &q), vec![0, 1]);
        locks.release(&q[0]);
        locks.release(&q[1]);
        assert_eq!(pick(&mut locks, &q[2..]), vec![0]);
        assert!(!locks.can_take(&ping("n3", "n9")));
        locks.release(&q[2]);
        assert!(locks.is_idle());
    }

    #[test]
    fn a_waiting_bandwidth_test_is_not_overtaken() {
        let mut locks = Locks::default();
        locks.take(&ping("n1", "n2"));
        // The bandwidth job waits for n1; the ping behind it must not jump the queue on n1.
        let q = [bw("n1", "n3"), ping("n1", "n4"), ping("n5", "n6")];
        assert_eq!(pick(&mut locks, &q), vec![2]);
    }

    #[test]
    fn one_iperf3_server_serves_one_test() {
        let mut locks = Locks::default();
        let a = Claim::for_job(
            JobKind::Iperf3,
            "addr:10.0.0.1",
            None,
            Some("10.0.0.9:5201".into()),
        );
        let b = Claim::for_job(
            JobKind::Iperf3,
            "addr:10.0.0.2",
            None,
            Some("10.0.0.9:5201".into()),
        );
        assert_eq!(pick(&mut locks, [&a, &b]), vec![0]);
    }

    #[test]
    fn sweeps_share_every_node_they_touch_but_not_with_bandwidth() {
        let mut locks = Locks::default();
        let a = Claim::for_sweep("n1", ["n2", "n3", "n2"].into_iter());
        let b = Claim::for_sweep("n2", ["n1", "n3"].into_iter());
        assert_eq!(a.shared, ["n1", "n2", "n3"]);
        assert_eq!(pick(&mut locks, [&a, &b, &bw("n3", "n4")]), vec![0, 1]);
        locks.release(&a);
        locks.release(&b);
        assert!(locks.is_idle());
    }

    #[test]
    fn noop_is_free() {
        let mut locks = Locks::default();
        locks.take(&bw("n1", "n2"));
        let noop = Claim::for_job(JobKind::Noop, "n1", None, None);
        assert_eq!(pick(&mut locks, [&noop, &noop]), vec![0, 1]);
    }

    #[test]
    fn same_node_bandwidth_claims_the_node_once() {
        let mut locks = Locks::default();
        let c = bw("n1", "n1");
        assert_eq!(c.exclusive, vec!["n1".to_string()]);
        assert_eq!(pick(&mut locks, [&c]), vec![0]);
        locks.release(&c);
        assert!(locks.is_idle());
    }
}

//! Dependency cycles: concrete, deterministic, never invented.
//!
//! Cycles are looked for only when the graph is not a DAG; then each
//! strongly connected component (Tarjan) yields shortest cycles through its
//! machines, in name order, until each of its machines is on one.

use std::collections::{BTreeSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use super::Fleet;
use crate::metadata::Problem;

/// A strongly connected component can hold more cycles than anyone wants to
/// read; past this many per component the rest of its machines are named in
/// one summary problem instead.
const MAX_CYCLES_PER_COMPONENT: usize = 10;

/// One concrete cycle through every machine of every non-trivial strongly
/// connected component: for its machines in name order, the shortest cycle
/// through the first one no earlier cycle passed through. Each path is
/// closed (first == last) and follows real edges, so no cycle is invented;
/// a component with more than [`MAX_CYCLES_PER_COMPONENT`] such cycles is
/// cut short (its remaining machines are named by `problems`).
pub(super) fn find(graph: &DiGraph<(), (), u32>) -> Vec<Vec<usize>> {
    // The usual case, a DAG, costs one allocation-light pass instead of
    // Tarjan's one vector per component.
    if !petgraph::algo::is_cyclic_directed(graph) {
        return Vec::new();
    }
    let mut components: Vec<Vec<usize>> = petgraph::algo::tarjan_scc(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut c: Vec<usize> = c.into_iter().map(NodeIndex::index).collect();
            c.sort_unstable();
            c
        })
        .collect();
    if components.is_empty() {
        return Vec::new();
    }
    components.sort_unstable();
    let n = graph.node_count();
    let mut component = vec![usize::MAX; n];
    for (c, nodes) in components.iter().enumerate() {
        for &v in nodes {
            component[v] = c;
        }
    }
    let mut search = Bfs { parent: vec![0; n], seen: vec![0; n], round: 0 };
    let mut covered = vec![false; n];
    let mut cycles = Vec::new();
    for (c, nodes) in components.iter().enumerate() {
        let mut found = 0;
        for &start in nodes {
            if covered[start] || found == MAX_CYCLES_PER_COMPONENT {
                continue;
            }
            let cycle = search.shortest_cycle(graph, start, |v| component[v] == c);
            for &v in &cycle {
                covered[v] = true;
            }
            cycles.push(cycle);
            found += 1;
        }
    }
    cycles
}

struct Bfs {
    parent: Vec<usize>,
    /// `seen[v] == round` marks v visited in the current search, so the
    /// arrays are reused across searches without clearing.
    seen: Vec<u32>,
    round: u32,
}

impl Bfs {
    /// The shortest closed path start -> ... -> start inside the component
    /// `inside` describes; start must lie on a cycle in it.
    fn shortest_cycle(
        &mut self,
        graph: &DiGraph<(), (), u32>,
        start: usize,
        inside: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        self.round += 1;
        self.seen[start] = self.round;
        let mut queue = VecDeque::from([start]);
        let mut next = Vec::new();
        while let Some(u) = queue.pop_front() {
            next.clear();
            next.extend(graph.neighbors_directed(NodeIndex::new(u), Direction::Outgoing).map(|v| v.index()));
            // Visit in name order so the path found is the same every time.
            next.sort_unstable();
            for &v in &next {
                if v == start {
                    let mut back = Vec::new();
                    let mut at = u;
                    while at != start {
                        back.push(at);
                        at = self.parent[at];
                    }
                    let mut path = Vec::with_capacity(back.len() + 2);
                    path.push(start);
                    path.extend(back.into_iter().rev());
                    path.push(start);
                    return path;
                }
                if inside(v) && self.seen[v] != self.round {
                    self.seen[v] = self.round;
                    self.parent[v] = u;
                    queue.push_back(v);
                }
            }
        }
        unreachable!("node {start} lies on a cycle of its strongly connected component")
    }
}

pub(super) fn problems(fleet: &Fleet, cycles: &[Vec<usize>]) -> Vec<Problem> {
    let name = |i: usize| fleet.machines[i].name.as_str();
    let mut out = Vec::new();
    let mut covered = vec![false; fleet.machines.len()];
    for cycle in cycles {
        for &v in cycle {
            covered[v] = true;
        }
        let first = &fleet.machines[cycle[0]];
        let j = first.metadata.dependencies.iter().position(|d| d == name(cycle[1])).unwrap_or(0);
        let path: Vec<&str> = cycle.iter().map(|&v| name(v)).collect();
        out.push(Problem::error(
            &first.name,
            format!("dependencies[{j}]"),
            format!(
                "dependency cycle {}; machines on a cycle cannot be ordered: remove one of these dependencies",
                path.join(" -> ")
            ),
        ));
    }
    // Machines of components cut short by MAX_CYCLES_PER_COMPONENT.
    let left: Vec<&str> = petgraph::algo::tarjan_scc(&fleet.graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .flatten()
        .map(NodeIndex::index)
        .filter(|&v| !covered[v])
        .map(name)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(first) = left.first() {
        let shown: Vec<&str> = left.iter().take(10).copied().collect();
        let more =
            if left.len() > shown.len() { format!(" and {} more", left.len() - shown.len()) } else { String::new() };
        out.push(Problem::error(
            first,
            "dependencies",
            format!(
                "{} more machines are on the dependency cycles above ({}{more}); fix those cycles, then run {} again",
                left.len(),
                shown.join(", "),
                crate::hint::Hint::RunCheck
            ),
        ));
    }
    out
}

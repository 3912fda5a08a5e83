//! The fleet as a validated dependency graph: order, waves and selection.
//!
//! A [`Fleet`] holds the machines sorted by name and a petgraph [`DiGraph`]
//! with an edge from each machine to each machine it depends on. Node `i` is
//! the `i`-th machine by name, so every tie broken "by name" is a tie broken
//! by node index, and everything here is deterministic whatever order the
//! machines came in.
//!
//! Building a fleet validates it (unknown or self dependencies, duplicate
//! names, cycles); [`fleet_problems`] reports the same plus the fleet-wide
//! checks `lab check` shows (duplicate hostnames and targets, rebootOrder
//! contradicting a dependency).

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::metadata::{Machine, Problem};

mod check;
mod cycles;
mod load;
pub(crate) mod render;
mod select;
mod svg;
mod usable;
mod waves;

pub use check::{dependency_cycles, fleet_problems};
pub use load::{ordered, OrderError};
pub use render::{render_graph, GraphFormat, SequenceEntry};
pub use select::{Expand, SelectError, Selector};
pub use svg::{render_svg, PER_ROW};
pub use usable::{reachable, usable, Blocked, Blocking, Broken, Need, Purpose, Reachable, Usable};
pub use waves::Limits;

/// A validated fleet: machines by name and their dependency DAG.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Sorted by name; machine `i` is node `i` of `graph`.
    machines: Vec<Machine>,
    /// An edge from each machine to each of its dependencies (no self loops,
    /// no parallel edges, no cycles).
    graph: DiGraph<(), (), u32>,
    /// Each machine's groups as indexes into `group_names`, sorted, deduplicated.
    groups: Vec<Vec<u32>>,
    /// Every group name of the fleet, in order of first appearance.
    group_names: Vec<String>,
}

/// Why a [`Fleet`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The dependency graph is broken; every problem is listed.
    #[error(
        "the fleet's dependency graph is invalid:\n{}",
        .problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    Invalid {
        /// The errors, each naming the machine and the field.
        problems: Vec<Problem>,
    },
}

impl Fleet {
    /// Builds and validates the fleet. Fails, listing every problem, on
    /// duplicate machine names, self dependencies, unknown dependencies and
    /// dependency cycles. Warnings (see [`fleet_problems`]) do not fail it.
    pub fn new(machines: impl IntoIterator<Item = Machine>) -> Result<Fleet, FleetError> {
        let built = check::build(machines.into_iter().collect());
        let mut problems = built.problems;
        problems.extend(built.self_dependencies);
        if problems.is_empty() {
            Ok(built.fleet)
        } else {
            problems.sort_by(|a, b| a.machine.cmp(&b.machine));
            Err(FleetError::Invalid { problems })
        }
    }

    /// Builds the fleet of an evaluation's machines (keyed by name).
    pub fn from_map(machines: &BTreeMap<String, Machine>) -> Result<Fleet, FleetError> {
        Fleet::new(machines.values().cloned())
    }

    /// The machines, sorted by name.
    pub fn machines(&self) -> &[Machine] {
        &self.machines
    }

    /// The number of machines.
    pub fn len(&self) -> usize {
        self.machines.len()
    }

    /// True when the fleet has no machine.
    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// The machine called `name`.
    pub fn machine(&self, name: &str) -> Option<&Machine> {
        self.index_of(name).map(|i| &self.machines[i])
    }

    /// The machines `name` depends on directly, sorted by name.
    pub fn dependencies(&self, name: &str) -> Vec<&Machine> {
        self.neighbours(name, Direction::Outgoing)
    }

    /// The machines that depend directly on `name`, sorted by name.
    pub fn dependents(&self, name: &str) -> Vec<&Machine> {
        self.neighbours(name, Direction::Incoming)
    }

    /// The dependency graph: node `i` is `machines()[i]`, an edge goes from a
    /// machine to a machine it depends on.
    pub fn graph(&self) -> &DiGraph<(), (), u32> {
        &self.graph
    }

    /// The fleet restricted to the machines `keep` marks. A kept machine
    /// depends on every kept machine it reaches in the whole fleet's graph,
    /// also through machines left out: those are left alone, but the order
    /// they impose still holds (with `c -> b -> a`, selecting `a,c` still
    /// puts `a` first). Only the nearest kept machines along each path become
    /// edges, so the subset's transitive closure is the whole fleet's
    /// closure restricted to `keep` without adding every implied pair.
    fn subset(&self, keep: &[bool]) -> Fleet {
        let n = self.machines.len();
        let old_to_new: Vec<Option<usize>> = keep
            .iter()
            .scan(0usize, |next, &k| {
                Some(k.then(|| {
                    *next += 1;
                    *next - 1
                }))
            })
            .collect();
        let machines: Vec<Machine> =
            self.machines.iter().zip(keep).filter(|(_, k)| **k).map(|(m, _)| m.clone()).collect();
        let mut graph = DiGraph::with_capacity(machines.len(), 0);
        for _ in &machines {
            graph.add_node(());
        }
        // One depth-first walk per kept machine through the left-out ones;
        // `seen` holds the walk's number so it is never cleared.
        let mut seen = vec![usize::MAX; n];
        let mut stack = Vec::new();
        let mut targets = Vec::new();
        for (u, new_u) in old_to_new.iter().enumerate() {
            let Some(new_u) = *new_u else { continue };
            targets.clear();
            stack.push(u);
            seen[u] = u;
            while let Some(x) = stack.pop() {
                for v in self.graph.neighbors_directed(NodeIndex::new(x), Direction::Outgoing) {
                    let v = v.index();
                    if seen[v] == u {
                        continue;
                    }
                    seen[v] = u;
                    match old_to_new[v] {
                        Some(new_v) => targets.push(new_v),
                        None => stack.push(v),
                    }
                }
            }
            // Sorted so the graph, and every order read from it, does not
            // depend on the walk.
            targets.sort_unstable();
            for &t in &targets {
                graph.add_edge(NodeIndex::new(new_u), NodeIndex::new(t), ());
            }
        }
        let (groups, group_names) = check::intern_groups(&machines);
        Fleet { machines, graph, groups, group_names }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.machines.binary_search_by(|m| m.name.as_str().cmp(name)).ok()
    }

    fn neighbours(&self, name: &str, direction: Direction) -> Vec<&Machine> {
        let Some(i) = self.index_of(name) else { return Vec::new() };
        let mut out: Vec<usize> =
            self.graph.neighbors_directed(NodeIndex::new(i), direction).map(|n| n.index()).collect();
        out.sort_unstable();
        out.into_iter().map(|j| &self.machines[j]).collect()
    }
}

#[cfg(test)]
mod tests;

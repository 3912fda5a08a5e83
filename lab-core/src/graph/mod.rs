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
mod waves;

pub use check::{dependency_cycles, fleet_problems};
pub use load::{ordered, OrderError};
pub use render::{render_graph, GraphFormat, SequenceEntry};
pub use select::{Expand, SelectError, Selector};
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

    /// The fleet restricted to the machines `keep` marks, with the
    /// dependencies among them. A dependency on a machine left out is
    /// dropped: the caller chose to leave that machine alone.
    fn subset(&self, keep: &[bool]) -> Fleet {
        let machines = self.machines.iter().zip(keep).filter(|(_, k)| **k).map(|(m, _)| m.clone()).collect();
        check::build_unchecked(machines)
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

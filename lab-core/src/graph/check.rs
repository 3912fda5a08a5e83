//! Building the graph and everything that can be wrong with it: duplicate
//! names, self and unknown dependencies, cycles (found in `cycles`), and the
//! fleet-wide checks `lab check` adds (duplicate hostnames and targets,
//! rebootOrder against dependencies).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::{cycles, Fleet};
use crate::metadata::{Machine, Problem};
use crate::suggest::{did_you_mean, nearest};

/// A fleet as built, with what is wrong with it.
pub(super) struct Built {
    /// The graph without the offending edges, so later checks can run on it.
    pub fleet: Fleet,
    /// Errors that make the fleet impossible to order.
    pub problems: Vec<Problem>,
    /// Self dependencies, kept apart: `metadata::validate` already reports
    /// them, so `lab check` must not list them twice.
    pub self_dependencies: Vec<Problem>,
    /// Each reported cycle as node indexes, closed (first == last).
    pub cycles: Vec<Vec<usize>>,
}

/// Builds the graph and finds every problem in it.
pub(super) fn build(mut machines: Vec<Machine>) -> Built {
    let mut problems = Vec::new();
    let mut self_dependencies = Vec::new();
    // Stable: among machines of the same name the first given is kept.
    machines.sort_by(|a, b| a.name.cmp(&b.name));
    machines.dedup_by(|later, kept| {
        let duplicate = later.name == kept.name;
        if duplicate {
            problems.push(Problem::error(
                &later.name,
                "name",
                format!("two machines are called `{}`; give each machine its own name", later.name),
            ));
        }
        duplicate
    });

    let (groups, group_names) = intern_groups(&machines);
    let edge_count = machines.iter().map(|m| m.metadata.dependencies.len()).sum();
    let mut graph = DiGraph::with_capacity(machines.len(), edge_count);
    for _ in &machines {
        graph.add_node(());
    }
    let index: FastMap<&str, usize> = machines.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();
    let mut targets: Vec<usize> = Vec::new();
    for (i, machine) in machines.iter().enumerate() {
        targets.clear();
        for (j, dep) in machine.metadata.dependencies.iter().enumerate() {
            if *dep == machine.name {
                self_dependencies.push(Problem::error(
                    &machine.name,
                    format!("dependencies[{j}]"),
                    format!("the machine depends on itself; remove \"{dep}\" from lab.machine.dependencies"),
                ));
                continue;
            }
            match index.get(dep.as_str()) {
                // A dependency listed twice is one edge; validate() reports the repeat.
                Some(&k) if !targets.contains(&k) => {
                    targets.push(k);
                    graph.add_edge(NodeIndex::new(i), NodeIndex::new(k), ());
                }
                Some(_) => {}
                None => problems.push(unknown_dependency(&machines, machine, j, dep)),
            }
        }
    }
    drop(index);

    let fleet = Fleet { machines, graph, groups, group_names };
    let cycles = cycles::find(&fleet.graph);
    problems.extend(cycles::problems(&fleet, &cycles));
    Built { fleet, problems, self_dependencies, cycles }
}

/// Group ids in order of first appearance (machines are sorted by name, so
/// the ids are deterministic).
pub(super) fn intern_groups(machines: &[Machine]) -> (Vec<Vec<u32>>, Vec<String>) {
    let mut ids: FastMap<&str, u32> = FastMap::default();
    let mut names = Vec::new();
    let groups = machines
        .iter()
        .map(|m| {
            let mut mine: Vec<u32> = m
                .metadata
                .groups
                .iter()
                .map(|g| {
                    *ids.entry(g.as_str()).or_insert_with(|| {
                        names.push(g.clone());
                        (names.len() - 1) as u32
                    })
                })
                .collect();
            mine.sort_unstable();
            mine.dedup();
            mine
        })
        .collect();
    (groups, names)
}

/// FNV-1a: machine and group names are short and come from the user's own
/// fleet, so a DoS-resistant hash buys nothing and SipHash would be most of
/// the cost of building a large fleet.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

fn unknown_dependency(machines: &[Machine], machine: &Machine, j: usize, dep: &str) -> Problem {
    let hint = did_you_mean(&nearest(dep, machines.iter().map(|m| m.name.as_str())));
    Problem::error(
        &machine.name,
        format!("dependencies[{j}]"),
        format!("no machine is called `{dep}`{hint}; fix the name or remove it from lab.machine.dependencies"),
    )
}

/// Every problem the fleet's graph and addresses have, for `lab check`:
/// duplicate names are impossible here (the map is keyed by name); unknown
/// dependencies (with the closest names), dependency cycles (each as its
/// path), duplicate hostnames and duplicate targets (host, port) are errors;
/// a rebootOrder that contradicts a dependency is a warning naming both
/// machines. Self dependencies are left to [`crate::metadata::validate`],
/// which reports them per machine. Sorted by machine.
pub fn fleet_problems(machines: &BTreeMap<String, Machine>) -> Vec<Problem> {
    let built = build(machines.values().cloned().collect());
    let mut out = built.problems;
    out.extend(reboot_order_warnings(&built.fleet));
    out.extend(duplicate_addresses(&built.fleet.machines));
    out.sort_by(|a, b| a.machine.cmp(&b.machine));
    out
}

/// Every dependency cycle [`fleet_problems`] reports, as machine names, each
/// closed (`["a", "b", "a"]` for a -> b -> a).
pub fn dependency_cycles(machines: &BTreeMap<String, Machine>) -> Vec<Vec<String>> {
    let built = build(machines.values().cloned().collect());
    let name = |i: usize| built.fleet.machines[i].name.clone();
    built.cycles.iter().map(|c| c.iter().map(|&i| name(i)).collect()).collect()
}

fn reboot_order_warnings(fleet: &Fleet) -> Vec<Problem> {
    let mut out = Vec::new();
    for edge in fleet.graph.edge_references() {
        let (m, d) = (&fleet.machines[edge.source().index()], &fleet.machines[edge.target().index()]);
        let (a, b) = (m.metadata.reboot_order, d.metadata.reboot_order);
        if a < b {
            out.push(Problem::warning(
                &m.name,
                "rebootOrder",
                format!(
                    "rebootOrder {a} is lower than the rebootOrder {b} of `{}`, which `{}` depends on; the dependency wins and `{}` goes first: set `{}`'s rebootOrder to {b} or more (or lower `{}`'s) so they agree",
                    d.name, m.name, d.name, m.name, d.name
                ),
            ));
        }
    }
    out
}

fn duplicate_addresses(machines: &[Machine]) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut hostnames: BTreeMap<String, &Machine> = BTreeMap::new();
    let mut targets: BTreeMap<(String, i64), &Machine> = BTreeMap::new();
    let same_hostname = |a: &Machine, b: &Machine| {
        a.hostname.as_ref().zip(b.hostname.as_ref()).is_some_and(|(x, y)| x.eq_ignore_ascii_case(y))
    };
    // Machines are sorted by name, so the first holder is the smallest name.
    for m in machines {
        if let Some(hostname) = &m.hostname {
            match hostnames.entry(hostname.to_ascii_lowercase()) {
                Entry::Vacant(v) => {
                    v.insert(m);
                }
                Entry::Occupied(o) => out.push(Problem::error(
                    &m.name,
                    "hostname",
                    format!(
                        "hostname \"{hostname}\" is also the hostname of `{}`; give each machine its own networking.hostName",
                        o.get().name
                    ),
                )),
            }
        }
        let key = (m.target_host().to_ascii_lowercase(), m.metadata.target_port);
        match targets.entry(key) {
            Entry::Vacant(v) => {
                v.insert(m);
            }
            // Same hostname is reported above; one fix usually settles both.
            Entry::Occupied(o) if same_hostname(o.get(), m) => {}
            Entry::Occupied(o) => out.push(Problem::error(
                &m.name,
                "targetHost",
                format!(
                    "`{}` is reached at the same address, {}:{}, so lab would run both machines' steps on one host; set lab.machine.targetHost (or targetPort) to this machine's own address",
                    o.get().name,
                    m.target_host(),
                    m.metadata.target_port
                ),
            )),
        }
    }
    out
}

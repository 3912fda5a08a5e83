//! What a command over a selection may use when part of the fleet is
//! broken: the one decision every frontend (CLI, C API, runs) takes before
//! it orders or reaches machines.
//!
//! A machine is *broken* when it failed to evaluate, when its dependencies
//! are not sound (an unknown or unmanaged name, itself, a dependency cycle
//! it lies on), and, for a run ([`Purpose::Run`]), when `lab check` reports
//! any other error on it (its fields, a shared address). A broken machine
//! blocks a command only when the command needs it; the others are left
//! alone and named as warnings.
//!
//! What a command *needs*, for ordering ([`usable`]):
//!
//! - every selected machine (all of them without `--on`), grown by
//!   `--with-dependencies` / `--with-dependents`;
//! - everything those machines depend on, transitively, selected or not: a
//!   dependency fixes the order (the selection keeps the whole fleet's
//!   order, through machines left out) and must itself be sound for the
//!   selection to be safe to act on;
//! - with `--with-dependents`, every machine that failed to evaluate: its
//!   dependencies are unknown, so it may depend on a selected machine and
//!   then belong to the selection.
//!
//! Why this is enough to know the order: the order among the selected
//! machines is the whole fleet's, i.e. the paths between them. Every path
//! leaving a selected machine follows dependencies declared by machines that
//! evaluated; it could only continue through an unknown edge at a machine
//! that failed to evaluate (whose own dependencies nobody knows), and such a
//! machine is then reached from the selection, hence needed, hence blocks.
//! A broken machine that merely depends on a selected one cannot put
//! anything between two selected machines unless a selected machine depends
//! on it in turn, which makes it needed. So when nothing needed is broken,
//! the dependency graph of the needed machines is complete and valid, and
//! the selection's order is exactly the one a repaired fleet would give.
//!
//! A machine that failed to evaluate has no known role or groups: only a
//! name term (or a role pattern that matches every role, such as
//! `role:*`) selects it; `@group` and other `role:` terms cannot tell, so
//! it is named among the warnings rather than silently assumed out.
//!
//! For reaching machines without ordering them ([`reachable`]: health,
//! exec, status), dependencies play no part: only the selected machines are
//! needed, and only a failure to evaluate blocks one (a machine with field
//! problems can still be reached and checked).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde::Serialize;

use super::{Expand, Fleet, FleetError, OrderError, Selector};
use crate::eval::{Evaluation, HostFailure};
use crate::hint::Hint;
use crate::metadata::{parse_machine, Machine, Problem, Severity};
use crate::printable::printable;

/// What the selection is for, which decides what counts as broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Reading the order (sequence, graph, plan): a needed machine must
    /// have evaluated and its dependencies must be sound (all known, none on
    /// a cycle, none on itself). Other problems (a bad targetHost, a bad
    /// health check) do not change the order and are left to `lab check`.
    Order,
    /// Running (deploy, reboot, orchestrate, their dry runs): a needed
    /// machine must also be free of every error `lab check` reports.
    Run,
}

/// A machine that cannot be acted on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The machine's name.
    pub machine: String,
    /// Set when the machine failed to evaluate: nix's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<HostFailure>,
    /// The error-level problems `lab check` reports on it, in field order.
    pub problems: Vec<Problem>,
    /// The other machines of the dependency cycle(s) it lies on, sorted;
    /// empty when it is on none. The cycle's problem is reported on one of
    /// them, which is broken too.
    pub cycle: Vec<String>,
}

impl Broken {
    /// A short reason, for a warning line: "failed to evaluate", "2
    /// problems", "on a dependency cycle with a, b".
    pub fn reason(&self) -> String {
        let mut parts = Vec::new();
        if self.failure.is_some() {
            parts.push("failed to evaluate".to_string());
        }
        match self.problems.len() {
            0 => {}
            1 => parts.push(format!("{}: {}", self.problems[0].field, self.problems[0].message)),
            n => parts.push(format!("{n} problems")),
        }
        // A cycle is reported as a problem on one of its machines; the
        // others say which cycle they are on.
        if !self.cycle.is_empty() && self.problems.is_empty() {
            let names: Vec<String> = self.cycle.iter().map(|n| format!("`{}`", printable(n))).collect();
            parts.push(format!("on a dependency cycle with {}", names.join(", ")));
        }
        parts.join("; ")
    }

    /// The lines that say in full what is wrong: its failure, then its
    /// problems, each as `lab check` prints it.
    pub fn details(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(f) = &self.failure {
            let at = f.location.as_deref().map_or(String::new(), |l| format!(" ({l})"));
            out.push(format!("error: machine `{}`: failed to evaluate{at}: {}", printable(&f.machine), f.message));
        }
        out.extend(self.problems.iter().map(ToString::to_string));
        out
    }
}

/// Why a broken machine is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "machine")]
pub enum Need {
    /// It is in the selection (named, matched, or added by
    /// `--with-dependencies` / `--with-dependents`).
    Selected,
    /// A machine of the selection depends on it (directly or through
    /// others): the named one.
    DependencyOf(String),
    /// It failed to evaluate, so its dependencies are unknown, and
    /// `--with-dependents` asks for everything that depends on the
    /// selection: it may.
    MayDependOnSelection,
}

/// A broken machine that a selection needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocking {
    /// The machine and what is wrong with it.
    #[serde(flatten)]
    pub broken: Broken,
    /// Why the selection needs it.
    pub needed: Need,
}

impl Blocking {
    /// "`a` (selected)", "`a` (`b` depends on it)", ...
    fn describe(&self) -> String {
        let name = printable(&self.broken.machine);
        match &self.needed {
            Need::Selected => format!("`{name}` (selected)"),
            Need::DependencyOf(by) => format!("`{name}` (`{}` depends on it)", printable(by)),
            Need::MayDependOnSelection => {
                format!("`{name}` (it failed to evaluate, so it may depend on the selection)")
            }
        }
    }
}

/// Broken machines a selection needs: nothing was selected, nothing may be
/// ordered or run until they are fixed or left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// The `--on` expression, or `None` for the whole fleet.
    pub on: Option<String>,
    /// The broken machines it needs, sorted by name.
    pub blocking: Vec<Blocking>,
}

impl Blocked {
    /// Every line that says what is wrong with the blocking machines, each
    /// once, sorted: what `lab check` prints for them.
    pub fn details(&self) -> Vec<String> {
        let lines: BTreeSet<String> = self.blocking.iter().flat_map(|b| b.broken.details()).collect();
        lines.into_iter().collect()
    }

    /// One sentence naming the blocking machines and what to do.
    pub fn headline(&self) -> String {
        let names: Vec<String> = self.blocking.iter().map(Blocking::describe).collect();
        match &self.on {
            None => format!(
                "the fleet cannot be ordered while machines are broken: {}; fix them (see {})",
                self.blocking
                    .iter()
                    .map(|b| format!("`{}`", printable(&b.broken.machine)))
                    .collect::<Vec<_>>()
                    .join(", "),
                Hint::RunCheck
            ),
            Some(on) => format!(
                "--on \"{}\" needs machines that are broken: {}; fix them (see {}) or leave them out of the selection",
                printable(on),
                names.join(", "),
                Hint::RunCheck
            ),
        }
    }
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.headline())?;
        for line in self.details() {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

/// What a selection may order: its validated graph, and the broken machines
/// it leaves alone.
#[derive(Debug, Clone)]
pub struct Usable {
    /// The selection, ordered as the whole fleet orders it.
    pub fleet: Fleet,
    /// Broken machines the selection does not need, sorted by name: for a
    /// warning.
    pub outside: Vec<Broken>,
}

/// What a selection may reach (without ordering it).
#[derive(Debug, Clone)]
pub struct Reachable {
    /// The selected machines that evaluated, sorted by name, as evaluated.
    pub machines: Vec<Machine>,
    /// Machines that failed to evaluate and are not selected by name (or
    /// everything failed, without `--on`), sorted: for a warning.
    pub outside: Vec<Broken>,
}

/// The selection `on` (all machines when `None`) grown by `expand`, as a
/// validated graph ordered as the whole fleet orders it, when no machine it
/// needs (see the module documentation) is broken for `purpose`; else
/// [`OrderError::Blocked`] naming the broken machines it needs and why.
/// Broken machines it does not need are returned in [`Usable::outside`].
pub fn usable(
    evaluation: &Evaluation,
    on: Option<&str>,
    expand: Expand,
    purpose: Purpose,
) -> Result<Usable, OrderError> {
    let world = World::new(evaluation);
    let selected = world.selected(evaluation, on)?;
    let n = world.names.len();
    let mut grown = selected.clone();
    if expand.dependencies {
        world.reach(&selected, Direction::Outgoing, &mut grown, &mut vec![None; n]);
    }
    if expand.dependents {
        world.reach(&selected, Direction::Incoming, &mut grown, &mut vec![None; n]);
    }
    // Everything the grown selection depends on, and which of its machines
    // first reached it.
    let mut needed = grown.clone();
    let mut by: Vec<Option<usize>> = vec![None; n];
    world.reach(&grown, Direction::Outgoing, &mut needed, &mut by);

    let mut blocking = Vec::new();
    let mut outside = Vec::new();
    for i in 0..n {
        let Some(broken) = world.broken_for(i, purpose) else { continue };
        let need = if grown[i] {
            Some(Need::Selected)
        } else if needed[i] {
            Some(Need::DependencyOf(world.names[by[i].unwrap_or(i)].clone()))
        } else if expand.dependents && broken.failure.is_some() {
            Some(Need::MayDependOnSelection)
        } else {
            None
        };
        match need {
            Some(needed) => blocking.push(Blocking { broken, needed }),
            None => outside.push(broken),
        }
    }
    if !blocking.is_empty() {
        return Err(OrderError::Blocked(Blocked { on: on.map(str::to_string), blocking }));
    }

    // Nothing needed is broken: every needed machine evaluated, its
    // dependencies are all needed and sound, and none lies on a cycle.
    let fleet = Fleet::new((0..n).filter(|&i| needed[i]).filter_map(|i| world.machine(evaluation, i).cloned()))
        .map_err(|e| match e {
            FleetError::Invalid { problems } => OrderError::Invalid(problems),
        })?;
    let fleet = if needed == grown {
        fleet
    } else {
        let keep: Vec<bool> =
            fleet.machines().iter().map(|m| world.index.get(m.name.as_str()).is_some_and(|&i| grown[i])).collect();
        fleet.subset(&keep)
    };
    Ok(Usable { fleet, outside })
}

/// The machines `on` selects (all without `--on`), for commands that reach
/// machines without ordering them: dependencies play no part, so a fleet
/// whose graph is broken can still be checked and reached. A selected
/// machine that failed to evaluate is [`OrderError::Blocked`]; without
/// `--on`, machines that failed are returned in [`Reachable::outside`].
pub fn reachable(evaluation: &Evaluation, on: Option<&str>) -> Result<Reachable, OrderError> {
    let world = World::new(evaluation);
    let failed = |i: usize| world.broken[i].as_ref().filter(|b| b.failure.is_some());
    let selected = match on {
        Some(_) => world.selected(evaluation, on)?,
        None => vec![true; world.names.len()],
    };
    let mut blocking = Vec::new();
    let mut outside = Vec::new();
    let mut machines = Vec::new();
    for (i, &picked) in selected.iter().enumerate() {
        match (failed(i), picked) {
            (Some(broken), true) if on.is_some() => {
                // Only its failure matters here; its problems are not known.
                blocking.push(Blocking { broken: broken.clone(), needed: Need::Selected })
            }
            (Some(broken), _) => outside.push(broken.clone()),
            (None, true) => machines.extend(world.machine(evaluation, i).cloned()),
            (None, false) => {}
        }
    }
    if !blocking.is_empty() {
        return Err(OrderError::Blocked(Blocked { on: on.map(str::to_string), blocking }));
    }
    Ok(Reachable { machines, outside })
}

/// Every machine of an evaluation, good or failed, with the dependency
/// edges that are known and what is broken.
struct World {
    /// Every name, sorted: the evaluated machines and the failed hosts.
    names: Vec<String>,
    index: BTreeMap<String, usize>,
    /// An edge from each evaluated machine to each known machine it depends
    /// on. A failed machine has no known edges.
    graph: DiGraph<(), (), u32>,
    /// What is wrong with each machine, `None` when it is sound.
    broken: Vec<Option<Broken>>,
    /// Whether each machine is broken for ordering: failed to evaluate, or
    /// a dependency unknown, unmanaged, itself, or on a cycle.
    unorderable: Vec<bool>,
}

impl World {
    fn new(evaluation: &Evaluation) -> World {
        let mut names: Vec<String> = evaluation.machines.keys().cloned().collect();
        names.extend(evaluation.failures.iter().map(|f| f.machine.clone()));
        names.sort();
        names.dedup();
        let index: BTreeMap<String, usize> = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        let mut graph = DiGraph::with_capacity(names.len(), 0);
        for _ in &names {
            graph.add_node(());
        }
        let mut unorderable = vec![false; names.len()];
        for failure in &evaluation.failures {
            unorderable[index[&failure.machine]] = true;
        }
        for (name, machine) in &evaluation.machines {
            let from = index[name];
            let mut seen = BTreeSet::new();
            for dep in &machine.metadata.dependencies {
                // Unknown and unmanaged names have no node; `lab check`
                // reports them (and a dependency on itself).
                match index.get(dep) {
                    Some(&to) if to != from => {
                        if seen.insert(to) {
                            graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
                        }
                    }
                    _ => unorderable[from] = true,
                }
            }
        }

        let mut broken: Vec<Option<Broken>> = vec![None; names.len()];
        let entry = |broken: &mut Vec<Option<Broken>>, i: usize| -> usize {
            broken[i].get_or_insert_with(|| Broken {
                machine: names[i].clone(),
                failure: None,
                problems: Vec::new(),
                cycle: Vec::new(),
            });
            i
        };
        for failure in &evaluation.failures {
            let i = entry(&mut broken, index[&failure.machine]);
            if let Some(b) = broken[i].as_mut() {
                b.failure = Some(failure.clone());
            }
        }
        for problem in crate::check::check(evaluation).problems {
            if problem.severity != Severity::Error {
                continue;
            }
            let Some(&i) = index.get(&problem.machine) else { continue };
            entry(&mut broken, i);
            if let Some(b) = broken[i].as_mut() {
                b.problems.push(problem);
            }
        }
        if petgraph::algo::is_cyclic_directed(&graph) {
            for component in petgraph::algo::tarjan_scc(&graph) {
                if component.len() < 2 {
                    continue;
                }
                let members: Vec<usize> = component.iter().map(|v| v.index()).collect();
                for &i in &members {
                    entry(&mut broken, i);
                    unorderable[i] = true;
                    let mut others: Vec<String> =
                        members.iter().filter(|&&j| j != i).map(|&j| names[j].clone()).collect();
                    others.sort();
                    if let Some(b) = broken[i].as_mut() {
                        b.cycle = others;
                    }
                }
            }
        }
        World { names, index, graph, broken, unorderable }
    }

    /// What is wrong with machine `i` for `purpose`, `None` when nothing.
    /// For ordering, only its failure, its cycle and the problems of its
    /// dependencies count.
    fn broken_for(&self, i: usize, purpose: Purpose) -> Option<Broken> {
        let broken = self.broken[i].as_ref()?;
        match purpose {
            Purpose::Run => Some(broken.clone()),
            Purpose::Order if self.unorderable[i] => {
                let mut broken = broken.clone();
                broken.problems.retain(|p| p.field.starts_with("dependencies"));
                Some(broken)
            }
            Purpose::Order => None,
        }
    }

    /// The evaluated machine of node `i`; `None` for a failed host.
    fn machine<'a>(&self, evaluation: &'a Evaluation, i: usize) -> Option<&'a Machine> {
        evaluation.machines.get(&self.names[i])
    }

    /// Which machines `on` picks (all without it). Terms are matched by the
    /// selector itself against every machine, dependencies aside; a failed
    /// host stands in with its name only (no role, no groups), so a name
    /// term or a role pattern that matches any role picks it.
    fn selected(&self, evaluation: &Evaluation, on: Option<&str>) -> Result<Vec<bool>, OrderError> {
        let Some(on) = on else { return Ok(vec![true; self.names.len()]) };
        let selector: Selector = on.parse()?;
        let stand_in = |name: &str| {
            // Cannot fail: the two required fields are given.
            parse_machine(name, serde_json::json!({ "role": "", "rebootOrder": 0 }), None).ok()
        };
        let unordered = self.names.iter().enumerate().filter_map(|(i, name)| match self.machine(evaluation, i) {
            Some(m) => {
                let mut m = m.clone();
                m.metadata.dependencies.clear();
                Some(m)
            }
            None => stand_in(name),
        });
        let skeleton = Fleet::new(unordered).map_err(|e| match e {
            FleetError::Invalid { problems } => OrderError::Invalid(problems),
        })?;
        let picked = skeleton.select(&selector, Expand::default())?;
        let mut selected = vec![false; self.names.len()];
        for m in picked.machines() {
            if let Some(&i) = self.index.get(&m.name) {
                selected[i] = true;
            }
        }
        Ok(selected)
    }

    /// Marks in `mark` everything reachable from `from` along `direction`,
    /// recording in `by` the machine of `from` each newly marked one was
    /// first reached from.
    fn reach(&self, from: &[bool], direction: Direction, mark: &mut [bool], by: &mut [Option<usize>]) {
        let mut queue: VecDeque<(usize, usize)> = (0..from.len()).filter(|&i| from[i]).map(|i| (i, i)).collect();
        let mut seen = from.to_vec();
        while let Some((u, origin)) = queue.pop_front() {
            for v in self.graph.neighbors_directed(NodeIndex::new(u), direction) {
                let v = v.index();
                if !seen[v] {
                    seen[v] = true;
                    if !mark[v] {
                        mark[v] = true;
                        by[v] = Some(origin);
                    }
                    queue.push_back((v, origin));
                }
            }
        }
    }
}

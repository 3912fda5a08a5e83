//! From a run's spec and its evaluated fleet to the plan it executes: check,
//! select, plan every phase, find every system to deploy, and hash it all.

use std::collections::BTreeMap;

use serde_json::json;

use super::error::OrchestrateError;
use crate::build::{BuildError, Builder, SystemRef};
use crate::eval::Evaluation;
use crate::graph::{usable, Broken, Expand, Fleet, OrderError, Purpose, Usable};
use crate::plan::{Plan, PlanKind};
use crate::store::spec::RunSpec;

/// A run ready to execute.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// What was asked.
    pub spec: RunSpec,
    /// The selected machines, ordered as the whole fleet orders them.
    pub fleet: Fleet,
    /// One plan per phase (deploy, reboot), in order.
    pub phases: Vec<Plan>,
    /// Each deployed machine's system.
    pub systems: BTreeMap<String, SystemRef>,
    /// Broken machines the selection does not need, left alone.
    pub outside: Vec<Broken>,
    /// Hash of the plans, the machines' metadata and their systems: a
    /// resumed run must find the same.
    pub hash: String,
}

impl Prepared {
    /// Number of steps over every phase.
    pub fn step_count(&self) -> usize {
        self.phases.iter().flat_map(|p| p.machines()).map(|(_, m)| m.steps.len()).sum()
    }
}

/// Checks what the run needs (any broken machine the selection needs
/// refuses the run: nothing is touched; see [`crate::graph::usable`]),
/// applies `--on`, plans each phase and, for deploys, evaluates every
/// system with `builder` (one nix process). Broken machines the selection
/// does not need are left alone, each named in a warning (and in
/// [`Prepared::outside`]).
pub async fn prepare(
    spec: &RunSpec,
    evaluation: &Evaluation,
    builder: Option<&dyn Builder>,
) -> Result<Prepared, OrchestrateError> {
    spec.validate()?;
    let expand = Expand { dependencies: spec.with_dependencies, dependents: spec.with_dependents };
    let Usable { fleet, outside } =
        usable(evaluation, spec.on.as_deref(), expand, Purpose::Run).map_err(|e| match e {
            OrderError::Select(e) => OrchestrateError::Select(e),
            other => OrchestrateError::Order(other),
        })?;
    for broken in &outside {
        tracing::warn!(
            "machine `{}` is left alone, the run does not need it: {}",
            crate::printable::printable(&broken.machine),
            broken.reason()
        );
    }
    let phases: Vec<Plan> =
        spec.kind.phases().iter().map(|&kind| Plan::with_options(kind, &fleet, &spec.limits, &spec.options)).collect();
    let mut systems = BTreeMap::new();
    if phases.iter().any(|p| p.kind == PlanKind::Deploy) {
        let builder = builder.ok_or_else(|| {
            BuildError::NotBuildable("a deploy needs the machines' systems; no builder was given".into())
        })?;
        let mut names: Vec<String> = fleet.machines().iter().map(|m| m.name.clone()).collect();
        names.sort();
        systems = builder.instantiate(&names).await?;
        if let Some(missing) = names.iter().find(|n| !systems.contains_key(*n)) {
            return Err(BuildError::Eval {
                machines: missing.clone(),
                message: "nix returned no system for it".into(),
            }
            .into());
        }
    }
    let hash = plan_hash(spec, &fleet, &phases, &systems);
    Ok(Prepared { spec: spec.clone(), fleet, phases, systems, outside, hash })
}

/// blake3 over what decides the run's actions, as canonical JSON: the
/// plans, every selected machine's metadata, and the systems (output paths
/// change whenever a configuration does).
pub fn plan_hash(spec: &RunSpec, fleet: &Fleet, phases: &[Plan], systems: &BTreeMap<String, SystemRef>) -> String {
    let machines: BTreeMap<&str, serde_json::Value> =
        fleet.machines().iter().map(|m| (m.name.as_str(), m.to_json_value())).collect();
    let outputs: BTreeMap<&str, &str> = systems.iter().map(|(n, s)| (n.as_str(), s.out_path.as_str())).collect();
    let value = json!({
        "kind": spec.kind,
        "phases": phases,
        "machines": machines,
        "systems": outputs,
    });
    blake3::hash(value.to_string().as_bytes()).to_hex().to_string()
}

/// The first 16 hex digits of the blake3 of `text`.
pub(crate) fn short_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

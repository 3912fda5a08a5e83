//! `lab check`: every problem of a fleet at once — hosts that do not
//! evaluate, each machine's field problems ([`validate`]), and the fleet's.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::eval::{Evaluation, HostFailure};
use crate::metadata::{validate, Problem, Severity};
use crate::suggest::{did_you_mean, nearest};

/// Everything `lab check` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// True when nothing failed and no problem is an error.
    pub clean: bool,
    /// Hosts that do not evaluate.
    pub failures: Vec<HostFailure>,
    /// Machine problems (by machine, in field order), then fleet problems.
    pub problems: Vec<Problem>,
    /// Configurations without the lab module (not a problem; listed for the record).
    pub unmanaged: Vec<String>,
}

/// Checks an evaluated fleet.
pub fn check(eval: &Evaluation) -> CheckReport {
    let mut problems: Vec<Problem> =
        eval.machines.iter().flat_map(|(name, machine)| validate(name, &machine.metadata)).collect();
    problems.extend(fleet_problems(eval));
    let clean = eval.failures.is_empty() && problems.iter().all(|p| p.severity != Severity::Error);
    CheckReport { clean, failures: eval.failures.clone(), problems, unmanaged: eval.unmanaged.clone() }
}

// replaced by graph::fleet_problems when the graph lands
/// Problems between machines: dependencies on machines that do not exist,
/// hostnames or targets used twice.
fn fleet_problems(eval: &Evaluation) -> Vec<Problem> {
    let mut out = Vec::new();
    for (name, machine) in &eval.machines {
        for (i, dep) in machine.metadata.dependencies.iter().enumerate() {
            let field = format!("dependencies[{i}]");
            if eval.machines.contains_key(dep) || eval.failures.iter().any(|f| &f.machine == dep) {
                // A failed host is reported as such already.
                continue;
            }
            let message = if eval.unmanaged.contains(dep) {
                format!("`{dep}` has no lab module; import nix/modules/lab-machine.nix in its configuration or remove the dependency")
            } else {
                let known = eval.names();
                format!("no machine named `{dep}`{}", did_you_mean(&nearest(dep, known)))
            };
            out.push(Problem::error(name, field, message));
        }
    }
    let mut hostnames: BTreeMap<&str, &str> = BTreeMap::new();
    let mut targets: BTreeMap<(&str, i64), &str> = BTreeMap::new();
    for (name, machine) in &eval.machines {
        if let Some(hostname) = machine.hostname.as_deref() {
            if let Some(first) = hostnames.insert(hostname, name) {
                hostnames.insert(hostname, first);
                out.push(Problem::error(
                    name,
                    "hostname",
                    format!(
                        "hostname \"{hostname}\" is also `{first}`'s; give each machine its own networking.hostName"
                    ),
                ));
            }
        }
        let target = (machine.target_host(), machine.metadata.target_port);
        if let Some(first) = targets.insert(target, name) {
            targets.insert(target, first);
            out.push(Problem::error(
                name,
                "targetHost",
                format!(
                    "{}:{} is also `{first}`'s target; set lab.machine.targetHost (or targetPort) to this machine's own address",
                    target.0, target.1
                ),
            ));
        }
    }
    out
}

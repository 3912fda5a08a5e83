//! `lab check`: every problem of a fleet at once — hosts that do not
//! evaluate, each machine's field problems ([`validate`]), and the fleet's.

use serde::Serialize;

use crate::eval::{Evaluation, HostFailure};
use crate::graph;
use crate::metadata::{validate, Machine, Problem, Severity};

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

/// The graph's problems ([`graph::fleet_problems`]: unknown dependencies,
/// cycles, shared addresses, rebootOrder contradictions), after taking out
/// the dependencies on hosts the evaluation already accounts for: a host
/// that failed is reported as such, and one without the lab module gets its
/// own message here.
fn fleet_problems(eval: &Evaluation) -> Vec<Problem> {
    let failed = |dep: &str| eval.failures.iter().any(|f| f.machine == dep);
    let mut out = Vec::new();
    let mut machines = eval.machines.clone();
    for (name, machine) in machines.iter_mut() {
        for (i, dep) in machine.metadata.dependencies.iter().enumerate() {
            if eval.unmanaged.iter().any(|u| u == dep) {
                out.push(Problem::error(
                    name,
                    format!("dependencies[{i}]"),
                    format!("`{dep}` has no lab module; import nix/modules/lab-machine.nix in its configuration or remove the dependency"),
                ));
            }
        }
        machine.metadata.dependencies.retain(|dep| !failed(dep) && !eval.unmanaged.contains(dep));
    }
    out.extend(graph::fleet_problems(&machines));
    out.extend(eval.machines.values().flat_map(name_problems));
    out.extend(stale_unmanaged(eval));
    out.sort_by(|a, b| (&a.machine, &a.field).cmp(&(&b.machine, &b.field)));
    out
}

/// Names in the fleet's `lab.unmanaged` setting that are not configurations
/// without lab's module: a machine since given the module (the entry is
/// stale but harmless) or no configuration at all (a typo, which would
/// leave the real one warned about). Warnings: nothing runs differently.
fn stale_unmanaged(eval: &Evaluation) -> Vec<Problem> {
    let failed = |name: &str| eval.failures.iter().any(|f| f.machine == name);
    eval.settings
        .unmanaged
        .iter()
        .filter(|name| !eval.unmanaged.contains(name) && !failed(name))
        .map(|name| {
            let why = if eval.machines.contains_key(name) {
                "has lab's module and is managed"
            } else {
                "is no configuration of the fleet"
            };
            Problem::warning(
                name,
                "lab.unmanaged",
                format!(
                    "the fleet's lab.unmanaged names `{}`, which {why}; remove it from lab.unmanaged",
                    crate::printable::printable(name)
                ),
            )
        })
        .collect()
}

/// What the name stands for beyond the metadata: a name that garbles every
/// listing, and an address (the hostname, else the name, when targetHost is
/// unset) that ssh cannot be given.
fn name_problems(machine: &Machine) -> Vec<Problem> {
    let mut out = Vec::new();
    if machine.name.chars().any(char::is_control) {
        out.push(Problem::error(
            &machine.name,
            "name",
            format!(
                "the name {:?} holds a control character, which garbles every listing; rename the configuration",
                machine.name
            ),
        ));
    }
    if machine.metadata.target_host.is_none() {
        let host = machine.target_host();
        if !crate::exec::is_valid_host(host) {
            let from = if machine.hostname.is_some() { "hostname" } else { "name" };
            out.push(Problem::error(
                &machine.name,
                "targetHost",
                format!("targetHost is unset, so lab would use the {from}: {}", crate::metadata::not_a_host(host)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::metadata::parse_machine;

    fn fleet(machines: &[(&str, serde_json::Value)]) -> Evaluation {
        let machines = machines.iter().map(|(n, v)| (n.to_string(), parse_machine(n, v.clone(), None).unwrap()));
        Evaluation { machines: machines.collect(), unmanaged: vec!["bare".into()], ..Evaluation::default() }
    }

    #[test]
    fn finds_unknown_dependencies_and_shared_addresses() {
        let eval = fleet(&[
            ("db-01", json!({ "role": "db", "rebootOrder": 0, "hostname": "db" })),
            ("web-01", json!({ "role": "web", "rebootOrder": 1, "dependencies": ["db-1", "bare"], "hostname": "db" })),
            ("web-02", json!({ "role": "web", "rebootOrder": 1, "hostname": "web-02", "targetHost": "db" })),
        ]);
        let report = check(&eval);
        assert!(!report.clean);
        let found: Vec<(&str, &str, &str)> =
            report.problems.iter().map(|p| (p.machine.as_str(), p.field.as_str(), p.message.as_str())).collect();
        assert_eq!(
            found,
            [
                ("web-01", "dependencies[0]", "no machine is called `db-1` (did you mean `db-01`?); fix the name or remove it from lab.machine.dependencies"),
                ("web-01", "dependencies[1]", "`bare` has no lab module; import nix/modules/lab-machine.nix in its configuration or remove the dependency"),
                ("web-01", "hostname", "hostname \"db\" is also the hostname of `db-01`; give each machine its own networking.hostName"),
                ("web-02", "targetHost", "`db-01` is reached at the same address, db:22, so lab would run both machines' steps on one host; set lab.machine.targetHost (or targetPort) to this machine's own address"),
            ]
        );
    }

    #[test]
    fn a_sound_fleet_is_clean() {
        let eval = fleet(&[
            ("a", json!({ "role": "x", "rebootOrder": 0 })),
            ("b", json!({ "role": "y", "rebootOrder": 0, "dependencies": ["a"] })),
        ]);
        assert_eq!(
            check(&eval),
            CheckReport { clean: true, failures: vec![], problems: vec![], unmanaged: vec!["bare".into()] }
        );
    }
}

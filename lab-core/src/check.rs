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
        let mut shares_hostname_with = None;
        if let Some(hostname) = machine.hostname.as_deref() {
            if let Some(first) = hostnames.insert(hostname, name) {
                hostnames.insert(hostname, first);
                shares_hostname_with = Some(first);
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
            // The target is the hostname by default: one problem is enough.
            if shares_hostname_with == Some(first) && machine.hostname.as_deref() == Some(target.0) {
                continue;
            }
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
                ("web-01", "dependencies[0]", "no machine named `db-1`; did you mean `db-01`?"),
                ("web-01", "dependencies[1]", "`bare` has no lab module; import nix/modules/lab-machine.nix in its configuration or remove the dependency"),
                ("web-01", "hostname", "hostname \"db\" is also `db-01`'s; give each machine its own networking.hostName"),
                ("web-02", "targetHost", "db:22 is also `db-01`'s target; set lab.machine.targetHost (or targetPort) to this machine's own address"),
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

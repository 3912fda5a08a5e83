//! Which machines a command acts on.

use anyhow::{bail, Result};
use lab_core::eval::Evaluation;
use lab_core::metadata::Machine;

/// The machines named by `--on` (comma-separated names), or all of them;
/// sorted by name.
// TODO: graph::select when graph lands (groups, roles, dependencies).
pub fn select(evaluation: &Evaluation, on: Option<&str>) -> Result<Vec<Machine>> {
    let Some(on) = on else {
        return Ok(evaluation.machines.values().cloned().collect());
    };
    let mut selected = Vec::new();
    for name in on.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match evaluation.machines.get(name) {
            Some(machine) if !selected.iter().any(|m: &Machine| m.name == name) => selected.push(machine.clone()),
            Some(_) => {}
            None => {
                let known: Vec<&str> = evaluation.machines.keys().map(String::as_str).collect();
                bail!("--on: no machine named `{name}`; the fleet has: {}", known.join(", "))
            }
        }
    }
    if selected.is_empty() {
        bail!("--on selects no machine; give machine names separated by commas");
    }
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(selected)
}

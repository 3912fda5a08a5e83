//! Which machines a command that does not order the fleet (health, exec)
//! acts on: `--on` with names, @group, role:NAME and globs.

use anyhow::Result;
use lab_core::eval::Evaluation;
use lab_core::graph::{Expand, Fleet, Selector};
use lab_core::metadata::Machine;

/// The machines `on` selects (all of them without `--on`), sorted by name.
/// Dependencies play no part here, so a fleet whose graph is broken can
/// still be checked and reached.
pub fn select(evaluation: &Evaluation, on: Option<&str>) -> Result<Vec<Machine>> {
    let Some(on) = on else {
        return Ok(evaluation.machines.values().cloned().collect());
    };
    let selector: Selector = on.parse()?;
    let unordered = evaluation.machines.values().cloned().map(|mut m| {
        m.metadata.dependencies.clear();
        m
    });
    let fleet = Fleet::new(unordered)?;
    let mut selected = fleet.select(&selector, Expand::default())?.machines().to_vec();
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(selected)
}

//! Which machines a command that does not order the fleet (health, exec,
//! status) acts on: `--on` with names, @group, role:NAME and globs, decided
//! by lab-core (`lab_core::graph::reachable`), as the C API decides it.

use anyhow::Result;
use lab_core::eval::Evaluation;
use lab_core::graph::{reachable, Broken};
use lab_core::metadata::Machine;
use lab_core::printable::printable;

/// The machines `on` selects (all of them without `--on`), sorted by name.
/// Dependencies play no part here, so a fleet whose graph is broken can
/// still be checked and reached; a selected machine that failed to
/// evaluate is an error, the others that failed are named in warnings.
pub fn select(evaluation: &Evaluation, on: Option<&str>) -> Result<Vec<Machine>> {
    let reached = reachable(evaluation, on)?;
    warn_outside(&reached.outside);
    Ok(reached.machines)
}

/// One warning line per broken machine the command leaves alone.
pub fn warn_outside(outside: &[Broken]) {
    for broken in outside {
        tracing::warn!(
            "machine `{}` is left alone, the selection does not need it: {}",
            printable(&broken.machine),
            broken.reason()
        );
    }
}

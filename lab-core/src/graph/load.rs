//! From an evaluated fleet to the validated graph a command orders, with
//! `--on` applied: the one path every frontend takes.

use super::{Expand, Fleet, FleetError, SelectError, Selector};
use crate::eval::{Evaluation, HostFailure};
use crate::metadata::Problem;

/// Why a fleet cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// Some hosts did not evaluate; ordering without them could break a dependency.
    #[error("the fleet cannot be ordered while machines fail to evaluate ({}); fix them first (see `lab check`)", .0.iter().map(|f| f.machine.as_str()).collect::<Vec<_>>().join(", "))]
    Unevaluated(Vec<HostFailure>),
    /// The dependency graph is broken.
    #[error("the fleet cannot be ordered: {} problem(s) in its dependency graph; see `lab check`", .0.len())]
    Invalid(Vec<Problem>),
    /// `--on` is wrong.
    #[error(transparent)]
    Select(#[from] SelectError),
}

/// The validated graph of `evaluation`, narrowed to `on` (an `--on`
/// expression) grown by `expand`.
pub fn ordered(evaluation: &Evaluation, on: Option<&str>, expand: Expand) -> Result<Fleet, OrderError> {
    if !evaluation.failures.is_empty() {
        return Err(OrderError::Unevaluated(evaluation.failures.clone()));
    }
    let fleet = Fleet::from_map(&evaluation.machines).map_err(|e| match e {
        FleetError::Invalid { problems } => OrderError::Invalid(problems),
    })?;
    match on {
        None => Ok(fleet),
        Some(on) => {
            let selector: Selector = on.parse()?;
            Ok(fleet.select(&selector, expand)?)
        }
    }
}

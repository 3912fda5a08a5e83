//! From an evaluated fleet to the validated graph a command orders, with
//! `--on` applied: the one path every frontend takes (see [`super::usable`]
//! for what a selection needs when part of the fleet is broken).

use super::usable::{usable, Blocked, Purpose};
use super::{Expand, Fleet, SelectError};
use crate::metadata::Problem;

/// Why a fleet, or a selection of it, cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// Machines the selection needs failed to evaluate or are not sound
    /// (every one is named, with why it is needed).
    #[error("{0}")]
    Blocked(Blocked),
    /// The needed machines' graph could not be built although none of them
    /// is broken; kept for callers that build graphs themselves.
    #[error("the fleet cannot be ordered: {} problem(s) in its dependency graph; see {}", .0.len(), crate::hint::Hint::RunCheck)]
    Invalid(Vec<Problem>),
    /// `--on` is wrong.
    #[error(transparent)]
    Select(#[from] SelectError),
}

impl OrderError {
    /// True when the fleet is not clean (broken machines are needed), as
    /// opposed to a wrong `--on`: frontends report it as they report the
    /// problems `lab check` finds (the CLI exits 1).
    pub fn fleet_not_clean(&self) -> bool {
        !matches!(self, OrderError::Select(_))
    }
}

/// The validated graph of `evaluation`, narrowed to `on` (an `--on`
/// expression) grown by `expand`: [`usable`] for reading the order,
/// without its warnings.
pub fn ordered(evaluation: &crate::eval::Evaluation, on: Option<&str>, expand: Expand) -> Result<Fleet, OrderError> {
    usable(evaluation, on, expand, Purpose::Order).map(|u| u.fleet)
}

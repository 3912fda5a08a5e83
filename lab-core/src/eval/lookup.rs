//! Finding one machine of an [`Evaluation`] by name.

use super::Evaluation;
use crate::metadata::Machine;
use crate::suggest::{did_you_mean, nearest};

/// Why a name does not give a machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No configuration has this name.
    #[error("no machine named `{}`{}", crate::printable::printable(name), crate::printable::printable(&did_you_mean(.suggestions)))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The nearest known names.
        suggestions: Vec<String>,
    },
    /// The configuration has no lab module.
    #[error("`{0}` has no lab module; import nix/modules/lab-machine.nix in its configuration to manage it")]
    Unmanaged(String),
    /// The configuration does not evaluate.
    #[error("{0}")]
    Failed(super::HostFailure),
}

impl Evaluation {
    /// The machine called `name`, or why there is none (with the nearest
    /// names when it is unknown).
    pub fn find(&self, name: &str) -> Result<&Machine, LookupError> {
        if let Some(machine) = self.machines.get(name) {
            return Ok(machine);
        }
        if self.unmanaged.iter().any(|n| n == name) {
            return Err(LookupError::Unmanaged(name.to_string()));
        }
        if let Some(failure) = self.failures.iter().find(|f| f.machine == name) {
            return Err(LookupError::Failed(failure.clone()));
        }
        Err(LookupError::Unknown { name: name.to_string(), suggestions: nearest(name, self.names()) })
    }

    /// Every configuration's name: managed, unmanaged and failed.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.machines
            .keys()
            .map(String::as_str)
            .chain(self.unmanaged.iter().map(String::as_str))
            .chain(self.failures.iter().map(|f| f.machine.as_str()))
    }
}

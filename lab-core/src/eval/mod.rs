//! Fleet evaluation: read every machine's `lab.machine` from its source.
//!
//! Sources are a flake, a Nix file, a hosts directory (all through one nix
//! process for the whole fleet) or the JSON contract itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::metadata::{parse_fleet_json, Machine, MetadataError};

mod spec;
pub use spec::{SourceSpec, SourceSpecError};

/// Where a fleet comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A flake reference: every `nixosConfigurations.<name>`.
    Flake(String),
    /// A Nix file that evaluates to an attrset holding `nixosConfigurations`.
    File(PathBuf),
    /// `DIR/<name>/configuration.nix`, each evaluated as NixOS with `nixpkgs`.
    HostsDir {
        /// The hosts directory.
        dir: PathBuf,
        /// The nixpkgs to evaluate them with.
        nixpkgs: PathBuf,
    },
    /// The JSON contract (`lab machines --json`, or collected metadata files).
    JsonFile(PathBuf),
}

/// A host whose configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFailure {
    /// The host's name.
    pub machine: String,
    /// nix's own message, or why its metadata is unreadable.
    pub message: String,
    /// `file:line` where nix places the error, when it does.
    pub location: Option<String>,
}

/// The outcome of reading a fleet: the healthy hosts, the unmanaged ones
/// (no lab module) and the ones that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// Managed machines by name.
    pub machines: BTreeMap<String, Machine>,
    /// Configurations without the lab module, sorted.
    pub unmanaged: Vec<String>,
    /// Hosts that failed to evaluate, sorted by name.
    pub failures: Vec<HostFailure>,
}

impl Evaluation {
    /// True when every host evaluated.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Why a fleet could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON contract is malformed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Metadata(Vec<MetadataError>),
}

/// Reads a fleet from `source`.
pub fn evaluate(source: &Source) -> Result<Evaluation, EvalError> {
    match source {
        Source::JsonFile(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.clone(), source })?;
            let machines = parse_fleet_json(&text, Some(path)).map_err(EvalError::Metadata)?;
            Ok(Evaluation { machines, ..Evaluation::default() })
        }
        other => unimplemented!("evaluating {other:?} lands with the fleet evaluation issue"),
    }
}

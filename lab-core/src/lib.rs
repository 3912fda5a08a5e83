//! lab-core: the library behind `lab`, a NixOS-native orchestrator for fleets
//! of NixOS machines.
//!
//! NixOS owns configuration; lab owns coordination. Each machine declares its
//! orchestration metadata in its NixOS configuration (`lab.machine`, see
//! [`metadata`]); lab reads the fleet, orders it by its dependency graph and
//! drives deploys and reboots gated by health checks.
#![deny(missing_docs)]

// The unit tests share the integration tests' simulated fleet, which names this crate `lab_core`.
#[cfg(test)]
extern crate self as lab_core;

pub mod build;
pub mod cancel;
pub mod check;
pub mod diff;
pub mod eval;
pub mod exec;
pub mod flake_ref;
pub mod graph;
pub mod health;
pub mod hint;
pub mod metadata;
pub mod metrics;
pub mod notify;
pub mod orchestrate;
pub mod plan;
pub mod printable;
pub mod reach;
pub mod redact;
pub mod remote;
pub mod schema;
pub mod settings;
pub mod status;
pub mod store;
pub mod suggest;
pub mod timeline;
pub mod window;

/// lab's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

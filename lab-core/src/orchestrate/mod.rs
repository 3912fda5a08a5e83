//! Orchestration: running a prepared deploy, reboot or orchestrate run
//! over the fleet. Building systems ([`crate::build`]), the commands run on
//! a machine ([`crate::remote`]) and what a run keeps on disk (journal,
//! lock, state directory, the run's typed record: [`crate::store`]) are
//! siblings of this module, which uses them.
//!
//! A run goes: [`RunSpec`] (what was asked) → [`prepare`] (check the fleet,
//! plan each phase, evaluate the systems, hash it all) → [`Session`] (take
//! the fleet's lock, open the journal) → [`execute`] (the wave loop, sending
//! [`Event`]s) → [`Report`]. [`resume::find`] and [`Session::resume`]
//! continue an interrupted run from its journal.
//!
//! Inside, the imports form a tree, from the top:
//! - drive.rs (the frontends' entry) → session.rs, resume.rs, prepare.rs, run.rs;
//! - run.rs (the wave loop) → the strategies deploy.rs and reboot.rs,
//!   policy.rs (pure scheduling decisions), ctx.rs;
//! - deploy.rs → the activation protocol (activation.rs: start and follow;
//!   confirm.rs: confirm), gate.rs (health), ctx.rs; reboot.rs → gate.rs,
//!   window_gate.rs, ctx.rs;
//! - ctx.rs (one run's context) → recorder.rs (journal, events, outcomes,
//!   hooks) → policy.rs, events.rs, report.rs;
//! - replay.rs (journals read back as events, for watchers of other processes' runs) → events.rs.

mod activation;
mod confirm;
mod ctx;
mod deploy;
pub mod drive;
mod error;
mod events;
mod gate;
mod policy;
mod prepare;
mod reboot;
mod recorder;
pub mod replay;
mod report;
pub mod resume;
mod run;
mod runtime;
mod session;
mod window_gate;

pub use crate::build::{update_flake, BuildError, Builder, FlakeUpdate, NixBuilder, PlaceholderBuilder, SystemRef};
pub use crate::cancel::CancelToken;
pub use crate::remote::{Activated, Escalation, Secret, Units};
pub use crate::store::dir::{fleet_key, new_run_id, utc_stamp, StateDir};
pub use crate::store::record::Outcome;
pub use crate::store::spec::{RunKind, RunSpec, SourceRecord, SpecError};
pub use error::OrchestrateError;
pub use events::{Event, Events, HookEvent, MachineResult, SkipReason};
pub use prepare::{plan_hash, prepare, Prepared};
pub use report::{MachineOutcome, Report};
pub use run::execute;
pub use runtime::{by_name, ProberDebug, Runtime};
pub use session::{force_unlock, planned_entries, read_journal, Session};
pub use window_gate::{Clock, LocalClock, OutsideWindow, RebootWindow, WindowClosed, WindowStatus, WindowVerdict};
// The paths of the modules that moved out of orchestrate/, for callers
// that still name them so.
pub use crate::remote;
pub use crate::store::{journal, lock};

#[cfg(test)]
mod tests;

//! Orchestration: deploy strategies, reboot sequencing, events and the
//! run's report. Building systems ([`crate::build`]), the commands run on a
//! machine ([`crate::remote`]) and what a run keeps on disk (journal, lock,
//! state directory, session, resume: [`crate::store`]) are siblings.
//!
//! A run goes: [`RunSpec`] (what was asked) → [`prepare`] (check the fleet,
//! plan each phase, evaluate the systems, hash it all) → [`Session`] (take
//! the fleet's lock, open the journal) → [`execute`] (the wave loop, sending
//! [`Event`]s) → [`Report`]. [`resume::find`] and [`Session::resume`]
//! continue an interrupted run from its journal.

mod activation;
mod cancel;
mod confirm;
mod deploy;
pub mod drive;
mod error;
mod events;
mod gate;
pub(crate) mod prepare;
mod reboot;
mod report;
pub(crate) mod run;
pub(crate) mod spec;
mod window_gate;

pub use crate::build::{update_flake, BuildError, Builder, FlakeUpdate, NixBuilder, PlaceholderBuilder, SystemRef};
pub use crate::remote::{Escalation, Secret};
pub use crate::store::dir::{fleet_key, new_run_id, utc_stamp, StateDir};
pub use crate::store::session::{force_unlock, read_journal, Session};
pub use cancel::CancelToken;
pub use deploy::{Activated, Units};
pub use error::OrchestrateError;
pub use events::{Event, Events};
pub use prepare::{plan_hash, prepare, Prepared};
pub use report::{MachineOutcome, Outcome, Report};
pub use run::{execute, planned_entries, ProberDebug, Runtime};
pub use spec::{RunKind, RunSpec, SourceRecord};
// The modules' paths from before they moved out of orchestrate/.
pub use crate::remote;
pub use crate::store::{journal, lock, resume};
pub use window_gate::{Clock, LocalClock, OutsideWindow, RebootWindow, WindowClosed, WindowStatus, WindowVerdict};

#[cfg(test)]
mod tests;

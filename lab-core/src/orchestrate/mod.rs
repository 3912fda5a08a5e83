//! Orchestration: deploy strategies, reboot sequencing, events, journal,
//! lock and resume.
//!
//! A run goes: [`RunSpec`] (what was asked) → [`prepare`] (check the fleet,
//! plan each phase, evaluate the systems, hash it all) → [`Session`] (take
//! the fleet's lock, open the journal) → [`execute`] (the wave loop, sending
//! [`Event`]s) → [`Report`]. [`resume::find`] and [`Session::resume`]
//! continue an interrupted run from its journal.

mod activation;
mod build;
mod cancel;
mod confirm;
mod deploy;
pub mod drive;
mod error;
mod events;
mod gate;
pub mod journal;
pub mod lock;
mod prepare;
mod reboot;
pub mod remote;
mod report;
pub mod resume;
mod run;
mod session;
mod spec;
mod state;
mod window_gate;

pub use build::{update_flake, BuildError, Builder, FlakeUpdate, NixBuilder, PlaceholderBuilder, SystemRef};
pub use cancel::CancelToken;
pub use deploy::{Activated, Units};
pub use error::OrchestrateError;
pub use events::{Event, Events};
pub use prepare::{plan_hash, prepare, Prepared};
pub use remote::{Escalation, Secret};
pub use report::{MachineOutcome, Outcome, Report};
pub use run::{execute, planned_entries, ProberDebug, Runtime};
pub use session::{force_unlock, read_journal, Session};
pub use spec::{RunKind, RunSpec, SourceRecord};
pub use state::{fleet_key, new_run_id, utc_stamp, StateDir};
pub use window_gate::{Clock, LocalClock, OutsideWindow, RebootWindow, WindowClosed, WindowStatus, WindowVerdict};

#[cfg(test)]
mod tests;

//! What stops a run from starting or going on.

use std::path::PathBuf;

use crate::build::BuildError;
use crate::eval::EvalError;
use crate::graph::{FleetError, OrderError, SelectError};
use crate::hint::{Hint, Hinted};
use crate::metadata::Problem;
use crate::store::journal::JournalError;
use crate::store::lock::LockError;

/// Why a run could not start, resume or go on. Failures of single machines
/// are not errors: they are in the run's report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrchestrateError {
    /// The run spec asks for something no run does (a goal its kind does
    /// not take).
    #[error(transparent)]
    Spec(#[from] crate::store::spec::SpecError),
    /// The fleet could not be read.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// Some machines failed to evaluate.
    #[error("machines failed to evaluate: {}; fix them first (see `lab check`)", .0.join(", "))]
    EvalFailures(Vec<String>),
    /// Machines the run needs are broken, or `--on` is wrong.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The dependency graph is broken.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// `--on` is wrong.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// A reboot outside the fleet's maintenance window, refused.
    #[error(transparent)]
    Window(#[from] super::window_gate::WindowClosed),
    /// `lab check` finds errors; orchestrate refuses to touch anything.
    #[error("the fleet has problems; nothing was changed:\n{}\nfix them (see `lab check`) and run again", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Problems(Vec<Problem>),
    /// Systems could not be evaluated or built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Another run holds the fleet's lock, or the lock file is unusable.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The journal could not be written or read.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// `lab resume` found no journal for the run.
    #[error("no run {run_id} in {}; list runs with `ls {}`", dir.display(), dir.display())]
    NoSuchRun {
        /// The run asked for.
        run_id: String,
        /// Where journals are.
        dir: PathBuf,
    },
    /// `lab resume` without a run id found nothing to resume.
    #[error("no interrupted run to resume in {}", .0.display())]
    NothingToResume(PathBuf),
    /// The run already ended.
    #[error("run {run_id} already finished ({outcome}); there is nothing to resume: start a new run")]
    Finished {
        /// The run.
        run_id: String,
        /// How it ended.
        outcome: String,
    },
    /// The fleet changed since the run began, so its plan is not the one journaled.
    #[error("run {run_id} cannot be resumed: the plan changed since it began (plan hash {journaled} then, {now} now): {why}; the steps already done stay done: check the machines (`lab status`) and start a new run")]
    PlanChanged {
        /// The run.
        run_id: String,
        /// The journaled hash.
        journaled: String,
        /// The hash now.
        now: String,
        /// What differs, as far as the journal tells.
        why: String,
    },
    /// The journal was written by something else.
    #[error("the journal of run {run_id} does not describe a run lab can resume: {reason}")]
    BadJournal {
        /// The run.
        run_id: String,
        /// What is missing.
        reason: String,
    },
    /// A machine named in the plan has no executor.
    #[error("{0}: no way to reach this machine was set up; this is a bug in the frontend")]
    NoExecutor(String),
    /// The run could not be set up (ssh control directory, a machine's
    /// address).
    #[error("cannot set up the run: {0}")]
    Setup(String),
}

impl OrchestrateError {
    /// True when the run was refused because the fleet itself is not clean:
    /// machines fail to evaluate, the fleet manages no configuration, the
    /// dependency graph is broken, or `lab check` finds errors on a machine
    /// the run needs. Frontends
    /// report it as they report those problems found by a read command (the
    /// CLI exits 1 for both), not as a runtime failure of lab.
    pub fn fleet_not_clean(&self) -> bool {
        match self {
            OrchestrateError::EvalFailures(_) | OrchestrateError::Fleet(_) | OrchestrateError::Problems(_) => true,
            OrchestrateError::Eval(e) => e.fleet_not_clean(),
            OrchestrateError::Order(e) => e.fleet_not_clean(),
            _ => false,
        }
    }
}

// Beside the error, so that hint.rs (which eval and graph use) never
// imports the orchestrator.
impl Hinted for OrchestrateError {
    fn hints(&self) -> Vec<Hint> {
        use OrchestrateError as E;
        match self {
            E::Eval(e) => e.hints(),
            E::Order(e) => e.hints(),
            E::Fleet(e) => e.hints(),
            E::Select(e) => e.hints(),
            E::Build(e) => e.hints(),
            E::EvalFailures(_) | E::Problems(_) => vec![Hint::RunCheck],
            _ => Vec::new(),
        }
    }
}

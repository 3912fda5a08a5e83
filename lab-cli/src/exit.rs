//! The exit codes of `lab`: one table for every command, the one in the
//! README's "Commands" section and in `lab --help`.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok (also: stdout's reader closed it early) |
//! | 1 | the fleet or a machine is not clean: problems, machines that fail to evaluate, failed checks, failed or rolled-back steps, and a run refused for any of these |
//! | 2 | usage or runtime error |
//! | 3 | another run holds the fleet's lock |
//! | 4 | interrupted; continue with `lab resume` |

use std::process::ExitCode;

use lab_core::eval::EvalError;
use lab_core::graph::OrderError;
use lab_core::orchestrate::OrchestrateError;
use lab_core::store::lock::LockError;

/// The table above as `lab --help` shows it.
pub const HELP: &str = "Exit codes (every command):
  0  ok; also when the reader of stdout closed it early
  1  the fleet or a machine is not clean (problems, machines that fail to evaluate,
     failed checks, failed or rolled-back steps), also a run refused for any of these
  2  usage or runtime error
  3  another run holds the fleet's lock
  4  interrupted; continue with `lab resume`";

/// How `lab` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done and clean.
    Success = 0,
    /// The fleet or a machine is not clean.
    NotClean = 1,
    /// A usage or runtime error.
    Error = 2,
    /// Another run holds the fleet's lock.
    Locked = 3,
    /// Stopped on request; resumable.
    Interrupted = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

impl Exit {
    /// `Success` when `clean`, else `NotClean`.
    pub fn clean_if(clean: bool) -> Exit {
        if clean {
            Exit::Success
        } else {
            Exit::NotClean
        }
    }

    /// The code for a command that failed with `error`; `None` when stdout
    /// was closed by its reader, which is no failure and prints nothing.
    pub fn of_error(error: &anyhow::Error) -> Option<Exit> {
        if crate::out::is_closed(error) {
            return None;
        }
        // A fleet that manages no configuration was read and is not clean.
        if error.chain().any(|c| c.downcast_ref::<EvalError>().is_some_and(EvalError::fleet_not_clean)) {
            return Some(Exit::NotClean);
        }
        // A selection that needs broken machines (health, exec, status).
        if error.chain().any(|c| c.downcast_ref::<OrderError>().is_some_and(OrderError::fleet_not_clean)) {
            return Some(Exit::NotClean);
        }
        let run = error.chain().find_map(|cause| cause.downcast_ref::<OrchestrateError>());
        Some(match run {
            Some(OrchestrateError::Lock(LockError::Held { .. })) => Exit::Locked,
            Some(e) if e.fleet_not_clean() => Exit::NotClean,
            _ => Exit::Error,
        })
    }
}

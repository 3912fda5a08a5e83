//! `lab resume` and `lab unlock`.

use anyhow::Result;
use clap::Args;
use lab_core::orchestrate::{force_unlock, StateDir};

use super::run_args::{run_resume, RunEnv};
use crate::exit::Exit;

/// Options of `lab resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to continue (default: the latest that did not end).
    run_id: Option<String>,
    #[command(flatten)]
    env: RunEnv,
}

/// Continues an interrupted run from its journal.
pub fn run(args: &ResumeArgs) -> Result<Exit> {
    run_resume(args.run_id.as_deref(), &args.env)
}

/// Options of `lab unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Required: removing a lock lets a second run start while the first may still act.
    #[arg(long, required = true)]
    force: bool,
    /// The run whose lock to remove (as the "held by" message names it).
    run_id: String,
    /// Where locks live [default: $XDG_STATE_HOME/lab or ~/.local/state/lab].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<std::path::PathBuf>,
}

/// Removes the lock a run holds.
pub fn unlock(args: &UnlockArgs) -> Result<Exit> {
    let state = args.state_dir.clone().map_or_else(StateDir::default_location, StateDir::new);
    let holder = force_unlock(&state, &args.run_id)?;
    eprintln!("removed the lock of {holder}; if that run is still alive it keeps running, so stop it first");
    Ok(Exit::Success)
}

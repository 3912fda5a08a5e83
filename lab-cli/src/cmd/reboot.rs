//! `lab reboot`.

use anyhow::Result;
use clap::Args;
use lab_core::orchestrate::{RunKind, RunSpec};

use super::run_args::{run_new, RunArgs};
use crate::exit::Exit;
use crate::fleet::FleetArgs;

/// Options of `lab reboot`.
#[derive(Debug, Args)]
pub struct RebootArgs {
    /// Skip every machine's rebootDelay.
    #[arg(long)]
    no_delay: bool,
    /// Only machines whose booted kernel, initrd or modules differ from their boot default.
    #[arg(long)]
    only_if_needed: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// Reboots the selected machines in sequence.
pub fn run(fleet: &FleetArgs, args: &RebootArgs) -> Result<Exit> {
    let mut spec = RunSpec::new(RunKind::Reboot, &fleet.source()?);
    args.run.apply(&mut spec);
    spec.options.no_delay = args.no_delay;
    spec.options.only_if_needed = args.only_if_needed;
    run_new(spec, &args.run, std::env::args().skip(1).collect(), false, fleet.options()?)
}

//! `lab sequence`.

use anyhow::Result;
use clap::Args;

use super::order_args::{self, LimitArgs, SelectArgs};
use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::render;

/// Options of `lab sequence`.
#[derive(Debug, Args)]
pub struct SequenceArgs {
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Print the sequence as JSON.
    #[arg(long, help_heading = "Options")]
    json: bool,
}

/// Prints the reboot sequence: position, machine, delay, wave.
pub fn run(fleet: &FleetArgs, args: &SequenceArgs) -> Result<Exit> {
    let Some((fleet, settings)) = order_args::load(fleet, &args.select)? else { return Ok(Exit::NotClean) };
    let limits = args.limits.limits(&settings);
    if args.json {
        render::print_json(&fleet.sequence(&limits))?;
    } else {
        crate::out::print(fleet.render_sequence(&limits))?;
    }
    Ok(Exit::Success)
}

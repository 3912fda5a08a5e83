//! `lab plan`.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use lab_core::plan::{Plan, PlanKind};

use super::order_args::{self, LimitArgs, SelectArgs};
use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::render;

/// Options of `lab plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The kind of run to plan.
    #[arg(value_enum)]
    kind: Kind,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Print the plan as JSON.
    #[arg(long, help_heading = "Options")]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Reboot,
    Deploy,
}

/// Prints the plan of a reboot or deploy run with its estimated duration.
pub fn run(fleet: &FleetArgs, args: &PlanArgs) -> Result<ExitCode> {
    let Some((fleet, settings)) = order_args::load(fleet, &args.select)? else { return Ok(Exit::NotClean.into()) };
    let kind = match args.kind {
        Kind::Reboot => PlanKind::Reboot,
        Kind::Deploy => PlanKind::Deploy,
    };
    let plan = Plan::new(kind, &fleet, &args.limits.limits(&settings));
    if args.json {
        render::print_json(&plan)?;
    } else {
        crate::out::print(plan.render_text())?;
    }
    Ok(ExitCode::SUCCESS)
}

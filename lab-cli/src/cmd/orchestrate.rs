//! `lab orchestrate`: the lab-orchestrator service as one command.

use anyhow::Result;
use clap::{Args, ValueEnum};
use lab_core::orchestrate::{RunKind, RunSpec};
use lab_core::plan::Goal;

use super::run_args::{run_new, RunArgs};
use crate::exit::Exit;
use crate::fleet::FleetArgs;

/// Options of `lab orchestrate`.
#[derive(Debug, Args)]
pub struct OrchestrateArgs {
    /// First update the flake's inputs (`nix flake update`).
    #[arg(long)]
    update: bool,
    /// boot (default: reboots activate it) or switch (activate now, reboot where the kernel changed).
    #[arg(long, value_enum, default_value = "boot")]
    goal: OrchestrateGoal,
    /// Skip every machine's rebootDelay.
    #[arg(long)]
    no_delay: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OrchestrateGoal {
    Boot,
    Switch,
}

/// Evaluates and checks the fleet (aborting on problems), deploys every
/// machine, then reboots in sequence those that need it.
pub fn run(fleet: &FleetArgs, args: &OrchestrateArgs) -> Result<Exit> {
    let mut spec = RunSpec::new(RunKind::Orchestrate, &fleet.source()?);
    args.run.apply(&mut spec);
    spec.options.goal = match args.goal {
        OrchestrateGoal::Boot => Goal::Boot,
        OrchestrateGoal::Switch => Goal::Switch,
    };
    spec.options.no_delay = args.no_delay;
    run_new(spec, &args.run, std::env::args().skip(1).collect(), args.update, fleet.options()?)
}

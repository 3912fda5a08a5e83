//! `lab deploy`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use lab_core::orchestrate::{RunKind, RunSpec};
use lab_core::plan::Goal;

use super::run_args::{run_new, RunArgs};
use crate::exit::Exit;
use crate::fleet::FleetArgs;

/// Options of `lab deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// What activation does: switch (default), boot, test or dry-activate.
    #[arg(long, value_enum, default_value = "switch")]
    goal: GoalArg,
    /// Build each system on its machine instead of here.
    #[arg(long)]
    build_on_target: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// `--goal`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GoalArg {
    /// Running system and boot default.
    Switch,
    /// Boot default only.
    Boot,
    /// Running system only.
    Test,
    /// Show what would change.
    DryActivate,
}

impl GoalArg {
    /// The core's goal.
    pub fn goal(self) -> Goal {
        match self {
            GoalArg::Switch => Goal::Switch,
            GoalArg::Boot => Goal::Boot,
            GoalArg::Test => Goal::Test,
            GoalArg::DryActivate => Goal::DryActivate,
        }
    }
}

/// Deploys the selected machines.
pub fn run(fleet: &FleetArgs, args: &DeployArgs) -> Result<Exit> {
    let mut spec = RunSpec::new(RunKind::Deploy, &fleet.source()?);
    args.run.apply(&mut spec);
    spec.options.goal = args.goal.goal();
    spec.options.build_on_target = args.build_on_target;
    run_new(spec, &args.run, std::env::args().skip(1).collect(), false, fleet.options()?)
}

//! `lab plan`.

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use lab_core::diff::MachineDiff;
use lab_core::orchestrate::{RebootWindow, WindowStatus};
use lab_core::plan::{Plan, PlanKind};
use serde::Serialize;

use super::hooks_args::WindowArgs;
use super::order_args::{self, LimitArgs, SelectArgs};
use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::render;
use crate::ssh::SshArgs;

mod diff;

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
    /// Plan a reboot as the run would take the fleet's rebootWindow.
    #[command(flatten)]
    window: WindowArgs,
    /// Print the plan as JSON.
    #[arg(long, help_heading = "Options")]
    json: bool,
    /// Also show what the deploy changes on each machine (packages, closure size, kernel: whether it
    /// will need a reboot): builds the new systems and reads the running ones from the machines.
    #[arg(long, help_heading = "Options")]
    diff: bool,
    /// Machines read at once with --diff.
    #[arg(long, value_name = "N", default_value_t = 16, help_heading = "Options", requires = "diff")]
    parallel: usize,
    #[command(flatten)]
    ssh: SshArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Reboot,
    Deploy,
}

/// The plan as `--json` prints it: the plan's own fields, and for a
/// reboot under a window what the real run would do about it.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    #[serde(skip_serializing_if = "Option::is_none")]
    window: Option<WindowStatus>,
    /// With `--diff`: what the deploy changes, per machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<Vec<MachineDiff>>,
}

/// Prints the plan of a reboot or deploy run with its estimated duration,
/// for a reboot whether the fleet's window lets it start now, and with
/// `--diff` what the deploy changes on each machine.
pub fn run(fleet_args: &FleetArgs, args: &PlanArgs) -> Result<Exit> {
    if args.diff && !matches!(args.kind, Kind::Deploy) {
        bail!("--diff shows what a deploy changes: use it with `lab plan deploy`");
    }
    let Some((fleet, settings)) = order_args::load_for(fleet_args, &args.select, order_args::Purpose::Run)? else {
        return Ok(Exit::NotClean);
    };
    let kind = match args.kind {
        Kind::Reboot => PlanKind::Reboot,
        Kind::Deploy => PlanKind::Deploy,
    };
    let plan = Plan::new(kind, &fleet, &args.limits.limits(&settings));
    let window = match kind {
        PlanKind::Reboot if !args.window.ignore_window => settings.reboot_window.clone(),
        _ => None,
    };
    let window = window.map(|w| RebootWindow::new(w, args.window.outside()).status());
    let diffs = match args.diff {
        true => Some(diff::gather(fleet_args, &fleet, &settings, &args.ssh, args.parallel)?),
        false => None,
    };
    // A machine whose diff could not be made fails the command (exit 1), after the rest is shown.
    let clean = diffs.iter().flatten().all(|d| d.error.is_none());
    if args.json {
        render::print_json(&Shown { plan: &plan, window, diff: diffs })?;
    } else {
        let mut text = plan.render_text();
        if let Some(window) = &window {
            // Right below the header and the estimate, before the waves.
            let at = text.find("\n\n").map_or(text.len(), |i| i + 1);
            text.insert_str(at, &format!("Reboot window: {}.\n", window.describe()));
        }
        if let Some(diffs) = &diffs {
            text.push_str("\nWhat the deploy changes:\n\n");
            text.push_str(&lab_core::diff::render_text(diffs));
        }
        crate::out::print(text)?;
    }
    Ok(if clean { Exit::Success } else { Exit::NotClean })
}

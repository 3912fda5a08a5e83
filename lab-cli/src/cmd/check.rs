//! `lab check`.

use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::out;
use crate::render::print_json;

/// Options of `lab check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints every problem at once; exit 0 only when the fleet is clean.
pub fn run(fleet: &FleetArgs, args: &Args) -> anyhow::Result<Exit> {
    let evaluation = fleet.load()?;
    let report = lab_core::check::check(&evaluation);
    if args.json {
        print_json(&report)?;
    } else {
        for failure in &report.failures {
            out::println(format_args!("error: {failure}"))?;
        }
        for problem in &report.problems {
            out::println(problem)?;
        }
        let errors = report.problems.iter().filter(|p| p.severity == lab_core::metadata::Severity::Error).count();
        out::println(format_args!(
            "{} machines checked: {} failed to evaluate, {errors} errors, {} warnings",
            evaluation.machines.len() + report.failures.len(),
            report.failures.len(),
            report.problems.len() - errors
        ))?;
    }
    Ok(Exit::clean_if(report.clean))
}

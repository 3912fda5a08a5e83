//! The `lab` command: parses arguments, calls lab-core, renders the result.
//!
//! Every command ends with one [`exit::Exit`]; the exit codes are one table
//! for every command, in [`exit`]. Everything printed on stdout goes
//! through [`out`].

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod exit;
mod fleet;
mod logging;
mod out;
mod progress;
mod render;
mod selection;
mod ssh;

/// Orchestrate a fleet of NixOS machines: order, health and rollback.
#[derive(Debug, Parser)]
#[command(name = "lab", version, about, propagate_version = true, after_long_help = exit::HELP)]
struct Cli {
    #[command(flatten)]
    fleet: fleet::FleetArgs,
    /// More detail on stderr: -v shows every command lab runs, -vv everything.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the JSON Schema of one machine's lab.machine metadata (--fleet: of a fleet's JSON form).
    Schema(cmd::schema::Args),
    /// Show the reboot sequence: position, machine, delay and wave.
    Sequence(cmd::sequence::SequenceArgs),
    /// Draw the dependency graph (dot, mermaid or json), waves as ranks.
    Graph(cmd::graph::GraphArgs),
    /// Show the plan of a reboot or deploy run, with its estimated duration.
    Plan(cmd::plan::PlanArgs),
    /// Run every health check once on the selected machines (or --local).
    Health(cmd::health::HealthArgs),
    /// Run a command on the selected machines in parallel: lab exec --on a,b -- CMD ARGS...
    Exec(cmd::exec::ExecArgs),
    /// List the fleet's machines.
    Machines(cmd::machines::Args),
    /// Show one machine in full.
    Show(cmd::show::Args),
    /// Check every machine and the fleet; exit 0 only when clean.
    Check(cmd::check::Args),
    /// Where each machine stands: reachable, healthy, up to date, needs a reboot, last run; exit 1 if any is not ok.
    Status(cmd::status::StatusArgs),
    /// Serve the dashboard, a JSON API, live run events and Prometheus metrics over HTTP (127.0.0.1 by default).
    Serve(cmd::serve::ServeArgs),
    /// Print a shell completion script: lab completions bash > /etc/bash_completion.d/lab
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): lab man | man -l -
    Man,
    /// Build, copy and activate the selected machines, in order, health-gated, with rollback.
    Deploy(cmd::deploy::DeployArgs),
    /// Reboot the selected machines in sequence, each back and healthy before the next.
    Reboot(cmd::reboot::RebootArgs),
    /// Check, deploy every machine, then reboot those that need it (optionally update the flake first).
    Orchestrate(cmd::orchestrate::OrchestrateArgs),
    /// Continue an interrupted run from its journal.
    Resume(cmd::resume::ResumeArgs),
    /// Remove a run's lock: lab unlock --force RUN_ID.
    Unlock(cmd::resume::UnlockArgs),
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    // `--flake .#` (the nixos-rebuild and deploy-rs habit) is the flake `.`;
    // an attribute after `#` is a usage error saying to use --on.
    if let Some(reference) = cli.fleet.flake.take() {
        match lab_core::flake_ref::whole_flake(&reference) {
            Ok(flake) => cli.fleet.flake = Some(flake.to_string()),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::Exit::Error.into();
            }
        }
    }
    let result: anyhow::Result<exit::Exit> = match cli.command {
        Command::Schema(args) => cmd::schema::run(&args),
        Command::Sequence(args) => cmd::sequence::run(&cli.fleet, &args),
        Command::Graph(args) => cmd::graph::run(&cli.fleet, &args),
        Command::Plan(args) => cmd::plan::run(&cli.fleet, &args),
        Command::Health(args) => cmd::health::run(&cli.fleet, &args),
        Command::Exec(args) => cmd::exec::run(&cli.fleet, &args),
        Command::Machines(args) => cmd::machines::run(&cli.fleet, &args),
        Command::Show(args) => cmd::show::run(&cli.fleet, &args),
        Command::Check(args) => cmd::check::run(&cli.fleet, &args),
        Command::Status(args) => cmd::status::run(&cli.fleet, &args),
        Command::Serve(args) => cmd::serve::run(&cli.fleet, &args),
        Command::Completions { shell } => cmd::docs::completions(Cli::command(), shell),
        Command::Man => cmd::docs::man(Cli::command()),
        Command::Deploy(args) => cmd::deploy::run(&cli.fleet, &args),
        Command::Reboot(args) => cmd::reboot::run(&cli.fleet, &args),
        Command::Orchestrate(args) => cmd::orchestrate::run(&cli.fleet, &args),
        Command::Resume(args) => cmd::resume::run(&args),
        Command::Unlock(args) => cmd::resume::unlock(&args),
    };
    match result {
        Ok(code) => code.into(),
        Err(e) => match exit::Exit::of_error(&e) {
            // The reader of stdout has gone: stop, quietly.
            None => exit::Exit::Success.into(),
            Some(code) => {
                eprintln!("error: {e:#}");
                code.into()
            }
        },
    }
}

//! The `lab` command: parses arguments, calls lab-core, renders the result.
//!
//! Exit codes: 0 success; 1 the command ran and found the fleet not clean
//! (problems, failed checks, failed steps); 2 usage or runtime error.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod fleet;
mod logging;
mod render;
mod selection;
mod ssh;

/// Orchestrate a fleet of NixOS machines: order, health and rollback.
#[derive(Debug, Parser)]
#[command(name = "lab", version, about, propagate_version = true)]
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
    /// Print the JSON Schema of one machine's lab.machine metadata.
    Schema,
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
    /// Print a shell completion script: lab completions bash > /etc/bash_completion.d/lab
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): lab man | man -l -
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Schema => cmd::schema::run(),
        Command::Sequence(args) => cmd::sequence::run(&cli.fleet, &args),
        Command::Graph(args) => cmd::graph::run(&cli.fleet, &args),
        Command::Plan(args) => cmd::plan::run(&cli.fleet, &args),
        Command::Health(args) => cmd::health::run(&cli.fleet, &args),
        Command::Exec(args) => cmd::exec::run(&cli.fleet, &args),
        Command::Machines(args) => cmd::machines::run(&cli.fleet, &args),
        Command::Show(args) => cmd::show::run(&cli.fleet, &args),
        Command::Check(args) => cmd::check::run(&cli.fleet, &args),
        Command::Completions { shell } => cmd::docs::completions(Cli::command(), shell),
        Command::Man => cmd::docs::man(Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

//! `lab graph`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use lab_core::graph::{render_graph, GraphFormat};

use super::order_args::{self, LimitArgs, SelectArgs};
use crate::exit::Exit;
use crate::fleet::FleetArgs;

/// Options of `lab graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Output format: Graphviz dot (`lab graph | dot -Tsvg > fleet.svg`), Mermaid, or JSON.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
    /// The graph as JSON: the same as --format json (every read command takes --json).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    select: SelectArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Dot,
    Mermaid,
    Json,
}

/// Prints the dependency graph with waves as ranks.
pub fn run(fleet: &FleetArgs, args: &GraphArgs) -> Result<Exit> {
    let Some((fleet, settings)) = order_args::load(fleet, &args.select)? else { return Ok(Exit::NotClean) };
    let format = match if args.json { Format::Json } else { args.format } {
        Format::Dot => GraphFormat::Dot,
        Format::Mermaid => GraphFormat::Mermaid,
        Format::Json => GraphFormat::Json,
    };
    crate::out::print(render_graph(&fleet, format, &args.limits.limits(&settings)))?;
    Ok(Exit::Success)
}

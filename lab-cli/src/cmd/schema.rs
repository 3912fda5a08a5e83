//! `lab schema`.

use crate::exit::Exit;

/// Options of `lab schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The schema of a whole fleet's JSON form (what `lab machines --json` prints and --json-file reads) instead of one machine's lab.machine.
    #[arg(long)]
    pub fleet: bool,
}

/// Prints the JSON Schema of one machine's metadata, or with `--fleet` of a
/// fleet's JSON form.
pub fn run(args: &Args) -> anyhow::Result<Exit> {
    crate::out::print(if args.fleet {
        lab_core::schema::fleet_schema_text()
    } else {
        lab_core::schema::machine_schema_text()
    })?;
    Ok(Exit::Success)
}

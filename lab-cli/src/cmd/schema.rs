//! `lab schema`.

use std::process::ExitCode;

/// Prints the JSON Schema of one machine's metadata.
pub fn run() -> anyhow::Result<ExitCode> {
    crate::out::print(lab_core::schema::machine_schema_text())?;
    Ok(ExitCode::SUCCESS)
}

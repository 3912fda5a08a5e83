//! `lab completions SHELL` and `lab man`: generated from the same clap
//! definition the parser uses, so they never drift from the real options.

use std::process::ExitCode;

use anyhow::Result;
use clap_complete::Shell;

/// Prints the completion script for `shell`.
pub fn completions(mut command: clap::Command, shell: Shell) -> Result<ExitCode> {
    // clap_complete panics when its writer fails: generate into memory,
    // then print through `out`, which handles a closed stdout.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "lab", &mut script);
    crate::out::print_bytes(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the man page (roff) of `lab`.
pub fn man(command: clap::Command) -> Result<ExitCode> {
    clap_mangen::Man::new(command).render(&mut crate::out::Stdout)?;
    Ok(ExitCode::SUCCESS)
}

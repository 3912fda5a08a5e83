//! Diagnostics on stderr through tracing: `-v` for debug (every command lab
//! runs), `-vv` for trace, `-q` for errors only; `RUST_LOG` filters override.
//! Colour only on a terminal, never with `NO_COLOR`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Whether output may use colour: a terminal and no `NO_COLOR`.
pub fn colour(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Starts logging at the level `-v`/`-q` ask for.
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "lab_core=debug,lab=debug,info",
        (false, _) => "trace",
    };
    let filter = std::env::var("RUST_LOG").ok().and_then(|f| EnvFilter::try_new(f).ok());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter.unwrap_or_else(|| EnvFilter::new(level)))
        .with_writer(std::io::stderr)
        .with_ansi(colour(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

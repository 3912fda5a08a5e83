//! The one way lab-cli's tests run `lab`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The `lab` binary under test.
pub const LAB: &str = env!("CARGO_BIN_EXE_lab");

/// A `lab` command that does not depend on the user's environment: no
/// `RUST_LOG`, and the XDG cache and state directories of this test run
/// (a test that needs its own sets them again; the later value wins).
pub fn lab() -> Command {
    let mut command = Command::new(LAB);
    command
        .env_remove("RUST_LOG")
        .env("XDG_CACHE_HOME", xdg().join("cache"))
        .env("XDG_STATE_HOME", xdg().join("state"));
    command
}

/// A directory for this test run's XDG directories, removed by nobody: it
/// is under the system's temporary directory and small.
fn xdg() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::Builder::new().prefix("lab-cli-tests").tempdir().unwrap().keep())
}

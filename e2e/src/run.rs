//! Running `lab` against a test fleet, and reading what it said and what
//! the hosts did: the helpers every end-to-end test file shares.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::{TestFleet, TestHost};

/// `lab ARGS` for `fleet`: its fleet file (except for `resume`, which reads
/// the journal), its ssh config, and `state` as the state directory.
pub fn lab_command(fleet: &TestFleet, state: &Path, args: &[&str]) -> Command {
    let mut cmd = fleet.command(crate::lab_binary());
    if args.first() != Some(&"resume") {
        cmd.arg("--file").arg(fleet.fleet_file());
    }
    cmd.args(args);
    cmd.arg("--ssh-config").arg(fleet.ssh_config()).arg("--state-dir").arg(state);
    cmd
}

/// Standard output then standard error, as text (for assertion messages).
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The events of a `--json` run, one per line of standard output.
pub fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Index of the first event that started `action` on `machine`.
pub fn started(events: &[Value], machine: &str, action: &str) -> Option<usize> {
    events.iter().position(|e| e["event"] == "step-started" && e["machine"] == machine && e["action"] == action)
}

/// The journal of the one run in the state directory `state`.
pub fn journal_path(state: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs")).unwrap().flatten().map(|e| e.path()).collect();
    runs.sort();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.pop().unwrap()
}

/// That journal's records, as JSON.
pub fn journal_records(state: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(journal_path(state)).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The trimmed standard output of a command that must have succeeded.
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed ({}): {}", out.status, text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// How many times `host` activated generation `generation` while running
/// (activations at boot do not count).
pub fn activations(host: &TestHost, generation: &str) -> usize {
    host.events("activate")
        .iter()
        .filter(|e| e.field("generation") == Some(generation) && e.field("at-boot") == Some("no"))
        .count()
}

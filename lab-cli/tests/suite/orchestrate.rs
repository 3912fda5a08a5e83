//! `lab deploy/reboot --dry-run`, lock contention and `lab unlock` through
//! the binary (runs against real machines are in e2e/).

use std::path::Path;
use std::process::Command;

use lab_core::orchestrate::{fleet_key, SourceRecord, StateDir};
use lab_core::store::lock::RunLock;

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/example.json").display().to_string()
}

fn lab(args: &[&str]) -> std::process::Output {
    crate::util::lab().args(args).output().unwrap()
}

#[test]
fn dry_run_prints_the_plan_and_the_exact_commands_and_touches_nothing() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let out = lab(&["--json-file", &example(), "deploy", "--dry-run", "--on", "sleeper-service", "--state-dir", dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Deploy plan: 1 machine in 1 wave"), "{text}");
    assert!(text.contains("[sleeper-service] $ systemd-run --on-active="), "{text}");
    assert!(text.contains("--unit=lab-switch-dryrun-"), "{text}");
    assert!(text.contains("[sleeper-service] $ systemctl stop lab-rollback-dryrun-"), "{text}");
    // Deterministic: the same plan and commands every time.
    let again = lab(&["--json-file", &example(), "deploy", "--dry-run", "--on", "sleeper-service", "--state-dir", dir]);
    assert_eq!(out.stdout, again.stdout);
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0, "no lock, no journal");
}

#[test]
fn a_held_lock_exits_3_naming_the_holder_and_unlock_force_frees_it() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let source = SourceRecord::JsonFile { path: std::path::absolute(example()).unwrap().display().to_string() };
    let lock_path = StateDir::new(state.path()).lock_path(&fleet_key(&source.describe()));
    let held = RunLock::acquire(&lock_path, "20250101T000000.000Z-1").unwrap();
    let out = lab(&["--json-file", &example(), "reboot", "--no-delay", "--state-dir", dir]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("lab unlock --force 20250101T000000.000Z-1"), "{stderr}");
    let out = lab(&["unlock", "--force", "20250101T000000.000Z-1", "--state-dir", dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!lock_path.exists());
    drop(held);
    let out = lab(&["unlock", "--force", "no-such-run", "--state-dir", dir]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn resume_without_runs_says_so() {
    let state = tempfile::tempdir().unwrap();
    let out = lab(&["resume", "--state-dir", state.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no interrupted run to resume"));
}

/// A maintenance window that is closed now: a one-hour window two days
/// from today (local time, as lab reads it).
fn closed_window() -> String {
    let out = Command::new("date").arg("+%u").output().unwrap();
    let today: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(); // 1 = Monday
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    format!("{} 03:00-04:00", days[(today - 1 + 2) % 7])
}

#[test]
fn a_reboot_outside_the_window_is_refused_before_anything_saying_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hosts/fleet.nix");
    let fleet = dir.path().join("fleet.nix");
    let window = closed_window();
    // Data into nix as a string literal: the window has no quote or `$`.
    std::fs::write(&fleet, format!("(import {}) // {{ lab.rebootWindow = \"{window}\"; }}\n", hosts.display()))
        .unwrap();
    let state = dir.path().join("state");
    let run = |extra: &[&str]| {
        crate::util::lab()
            .args(["--file", fleet.to_str().unwrap(), "reboot", "--on", "router", "--state-dir"])
            .arg(&state)
            .args(extra)
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("outside the maintenance window \"{window}\"")), "{stderr}");
    assert!(stderr.contains("it opens at") && stderr.contains("--ignore-window"), "{stderr}");
    assert!(!state.exists() || std::fs::read_dir(&state).unwrap().count() == 0, "no lock, no journal");
    // --ignore-window lets it through (shown as a plan only here).
    let out = run(&["--ignore-window", "--dry-run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

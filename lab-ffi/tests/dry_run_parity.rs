//! The C API's dry runs say what the CLI's say: the rebootDelay a machine
//! would wait (its real one, 120 s, not the 0 s a dry run sleeps), a
//! `FLAKE#` reference taken as the flake, and a reboot the real run would
//! refuse outside the window ending with the real run's status (the CLI
//! exits 2) after showing its plan (real nix).

use std::path::Path;
use std::process::Command;

use lab::{lab_reboot, lab_sequence, LabStatus};
use serde_json::json;

mod common;
use common::{call, run_collecting};

fn hosts() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hosts/fleet.nix").display().to_string()
}

#[test]
fn a_dry_run_reports_the_real_reboot_delay() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CACHE_HOME", dir.path().join("cache"));
    // The example fleet without its rebootWindow, which would refuse now.
    let fleet = dir.path().join("fleet.nix");
    std::fs::write(
        &fleet,
        format!("let f = import {}; in f // {{ lab = removeAttrs f.lab [ \"rebootWindow\" ]; }}\n", hosts()),
    )
    .unwrap();
    let state = dir.path().join("state");
    let request = json!({ "file": fleet, "on": "monitoring", "dryRun": true, "stateDir": state });
    let (status, result, events) = run_collecting(lab_reboot, &request);
    assert_eq!(status, LabStatus::LabOk, "{result}");
    let waits: Vec<&String> = events.iter().filter(|e| e.contains("rebootDelay")).collect();
    assert!(!waits.is_empty(), "a wait event: {events:#?}");
    assert!(waits.iter().all(|e| e.contains("wait 120 s (rebootDelay)")), "{waits:#?}");
    // noDelay still skips it, as --no-delay does.
    let (status, _, events) = run_collecting(
        lab_reboot,
        &json!({ "file": fleet, "on": "monitoring", "dryRun": true, "noDelay": true, "stateDir": state }),
    );
    assert_eq!(status, LabStatus::LabOk);
    assert!(events.iter().filter(|e| e.contains("rebootDelay")).all(|e| e.contains("wait 0 s")), "{events:#?}");
}

#[test]
fn a_flake_reference_ending_in_hash_is_the_flake() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures.join("flake/flake.nix"), dir.path().join("flake.nix")).unwrap();
    std::fs::copy(fixtures.join("fleets/lib.nix"), dir.path().join("lib.nix")).unwrap();
    std::env::set_var("XDG_CACHE_HOME", dir.path().join(".cache"));
    let flake = dir.path().display().to_string();
    let (status, plain) = call(lab_sequence, &json!({ "flake": flake }));
    assert_eq!(status, LabStatus::LabOk, "{plain}");
    let (status, hashed) = call(lab_sequence, &json!({ "flake": format!("{flake}#") }));
    assert_eq!(status, LabStatus::LabOk, "{hashed}");
    assert_eq!(hashed, plain);
    let (status, error) = call(lab_sequence, &json!({ "flake": format!("{flake}#web1") }));
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
    assert!(error.to_string().contains("select machines with --on web1"), "{error}");
}

#[test]
fn a_dry_run_the_real_run_would_refuse_outside_the_window_says_so() {
    let date = |args: &[&str]| {
        let out = Command::new("date").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // A window two days ahead is closed now.
    let window = format!("{} 03:00-04:00", date(&["-d", "+2 days", "+%a"]));
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CACHE_HOME", dir.path().join("cache"));
    let fleet = dir.path().join("fleet.nix");
    std::fs::write(&fleet, format!("(import {}) // {{ lab.rebootWindow = \"{window}\"; }}\n", hosts())).unwrap();
    let state = dir.path().join("state");
    let request = json!({ "file": fleet, "on": "monitoring", "dryRun": true, "stateDir": state });
    let (status, error, _) = run_collecting(lab_reboot, &request);
    let (real_status, real_error, _) =
        run_collecting(lab_reboot, &json!({ "file": fleet, "on": "monitoring", "stateDir": state }));
    assert_eq!(status, LabStatus::LabErrRun, "{error}");
    assert_eq!(real_status, status, "the real run's status: {real_error}");
    assert!(error["message"].as_str().unwrap().contains("maintenance window"), "{error}");
    assert!(error["dryRun"]["plans"].is_array(), "the plan is shown: {error}");
}

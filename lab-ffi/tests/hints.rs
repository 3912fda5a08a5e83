//! lab-core's errors give their advice as hints (lab_core::hint); the C API
//! words it in its own vocabulary, request fields and function names, where
//! the CLI says flags and commands: `evalTimeout` for `--eval-timeout`,
//! `lab_check` for `lab check` (issue 18). The hints are also listed in the
//! error object. The CLI's words are asserted by lab-cli's tests (cli.rs,
//! broken_neighbours.rs), unchanged. Real nix.

use std::ffi::{c_char, CStr, CString};
use std::path::Path;

use lab::{lab_build, lab_deploy, lab_orchestrate, lab_sequence, lab_string_free, LabStatus};
use serde_json::{json, Value};

mod common;
use common::{call, run};

#[test]
fn advice_names_what_a_c_caller_can_change() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CACHE_HOME", dir.path().join("cache"));

    // A slow fleet stopped by the timeout: raise evalTimeout.
    let slow = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/slow.nix");
    let (status, error) = call(lab_sequence, &json!({ "file": slow, "evalTimeout": 0.3, "refresh": true }));
    assert_eq!(status, LabStatus::LabErrEvaluation, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("evaluation exceeded evalTimeout (0.3s) and was stopped"), "{message}");
    // Which advice comes first depends on how far nix got in 0.3 s (on a
    // busy machine it may not have loaded the fleet yet); either way it is
    // worded for a C caller.
    assert!(message.contains("raise evalTimeout"), "{message}");
    assert!(!message.contains("--"), "{message}");
    assert_eq!(error["hints"], json!(["raiseEvalTimeout"]));

    // A selection that needs a broken machine: see lab_check.
    let fleet = dir.path().join("fleet.nix");
    std::fs::write(
        &fleet,
        r#"let m = name: deps: { config = { networking.hostName = name;
             lab.machine = { role = "server"; rebootOrder = 0; dependencies = deps; }; }; };
           in { nixosConfigurations = { a = throw "broken on purpose"; c = m "c" [ "a" ]; }; }"#,
    )
    .unwrap();
    let (status, error) = call(lab_sequence, &json!({ "file": fleet, "on": "c" }));
    assert_eq!(status, LabStatus::LabErrNotClean, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("fix them (see lab_check) or leave them out of the selection"), "{message}");
    assert!(!message.contains("`lab check`"), "{message}");
    assert_eq!(error["hints"], json!(["runCheck"]));

    // An error without advice lists no hints.
    let (status, error) = call(lab_sequence, &json!({ "file": fleet, "on": "zzz" }));
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
    assert!(error.get("hints").is_none(), "{error}");

    // In this test, not a test of its own: tests of one binary share the
    // process's XDG_CACHE_HOME, and a second nix at once slows the
    // evaluation the timeout above must stop midway.
    source_and_update_advice_names_request_fields(&dir);
}

/// The advice about the source and the flake update names request fields,
/// where `lab` says `--flake, --file, --hosts-dir` and `--update`.
fn source_and_update_advice_names_request_fields(dir: &tempfile::TempDir) {
    let contract = dir.path().join("fleet.json");
    std::fs::write(&contract, json!({ "web": { "role": "web", "rebootOrder": 0 } }).to_string()).unwrap();

    // The JSON contract has no systems to deploy or build.
    // (A real run: a dry run shows the deploy with placeholder systems.)
    let (status, error) = run(lab_deploy, &json!({ "jsonFile": contract, "stateDir": dir.path().join("state") }));
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.ends_with("deploy from the flake, file or hosts directory instead (flake, file, hostsDir)"),
        "{message}"
    );
    assert!(!message.contains("--"), "{message}");
    assert_eq!(error["hints"], json!(["buildableSource"]));
    let request = CString::new(json!({ "jsonFile": contract, "machine": "web" }).to_string()).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: a valid C string and a valid out slot.
    let status = unsafe { lab_build(request.as_ptr(), &mut out) };
    // SAFETY: lab returned a NUL-terminated string it owns; freed once.
    let error: Value = serde_json::from_str(unsafe { CStr::from_ptr(out) }.to_str().unwrap()).unwrap();
    unsafe { lab_string_free(out) };
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
    assert!(error["message"].as_str().unwrap().ends_with("(flake, file, hostsDir)"), "{error}");
    assert_eq!(error["hints"], json!(["buildableSource"]));

    // Only a flake has a lock file to update.
    let fleet = dir.path().join("fleet.nix");
    std::fs::write(&fleet, "{ nixosConfigurations = { }; }").unwrap();
    let (status, error) = run(lab_orchestrate, &json!({ "file": fleet, "update": true, "dryRun": true }));
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
    let message = error["message"].as_str().unwrap();
    assert_eq!(message, "update: true needs a flake; other sources have no lock file to update");
    assert_eq!(error["hints"], json!(["skipFlakeUpdate"]));
}

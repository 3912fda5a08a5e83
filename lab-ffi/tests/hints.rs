//! lab-core's errors give their advice as hints (lab_core::hint); the C API
//! words it in its own vocabulary, request fields and function names, where
//! the CLI says flags and commands: `evalTimeout` for `--eval-timeout`,
//! `lab_check` for `lab check` (issue 18). The hints are also listed in the
//! error object. The CLI's words are asserted by lab-cli's tests (cli.rs,
//! broken_neighbours.rs), unchanged. Real nix.

use std::ffi::{c_char, CStr, CString};
use std::path::Path;

use lab::{lab_sequence, lab_string_free, LabStatus};
use serde_json::{json, Value};

fn sequence(request: &Value) -> (LabStatus, Value) {
    let request = CString::new(request.to_string()).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: a valid C string and a valid out slot.
    let status = unsafe { lab_sequence(request.as_ptr(), &mut out) };
    // SAFETY: lab returned a NUL-terminated string it owns; freed once.
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    unsafe { lab_string_free(out) };
    (status, serde_json::from_str(&text).unwrap())
}

#[test]
fn advice_names_what_a_c_caller_can_change() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CACHE_HOME", dir.path().join("cache"));

    // A slow fleet stopped by the timeout: raise evalTimeout.
    let slow = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/slow.nix");
    let (status, error) = sequence(&json!({ "file": slow, "evalTimeout": 0.3, "refresh": true }));
    assert_eq!(status, LabStatus::LabErrEvaluation, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("evaluation exceeded evalTimeout (0.3s) and was stopped"), "{message}");
    assert!(message.ends_with("or raise evalTimeout"), "{message}");
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
    let (status, error) = sequence(&json!({ "file": fleet, "on": "c" }));
    assert_eq!(status, LabStatus::LabErrNotClean, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("fix them (see lab_check) or leave them out of the selection"), "{message}");
    assert!(!message.contains("`lab check`"), "{message}");
    assert_eq!(error["hints"], json!(["runCheck"]));

    // An error without advice lists no hints.
    let (status, error) = sequence(&json!({ "file": fleet, "on": "zzz" }));
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
    assert!(error.get("hints").is_none(), "{error}");
}

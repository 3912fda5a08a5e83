//! The C API and `(lab nix-integration)` on a fleet built on the original
//! design's lab.machine module (lab-core/tests/fixtures/original-module,
//! real nix and nixpkgs' real lib.evalModules): the same machines and
//! sequence as the same hosts on lab's own module; a fleet managing nothing
//! is `LAB_ERR_NOT_CLEAN`, saying how to fix it.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use lab::{lab_machines, lab_reboot, lab_sequence, lab_string_free, LabStatus};
use serde_json::{json, Value};

mod common;
use common::{call, Entry};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/original-module").join(name)
}

/// The evaluation cache of these tests is their own, never the user's: set
/// once, before any test reads the environment (every test calls this first).
fn setup() {
    static CACHE: Once = Once::new();
    CACHE.call_once(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        std::env::set_var("XDG_CACHE_HOME", dir);
    });
}

/// `refresh`: the fixtures are read by nix every time, whatever the cache holds.
fn request(name: &str) -> Value {
    json!({ "file": fixture(name), "refresh": true })
}

#[test]
fn the_c_api_reads_the_original_module_as_labs_module() {
    setup();
    if lab_testkit::nixpkgs_lib().is_none() {
        return;
    }
    for entry in [lab_machines as Entry, lab_sequence] {
        let (status, original) = call(entry, &request("fleet-original.nix"));
        assert_eq!(status, LabStatus::LabOk, "{original}");
        let (status, lab) = call(entry, &request("fleet-lab.nix"));
        assert_eq!(status, LabStatus::LabOk, "{lab}");
        assert_eq!(original, lab);
    }
    let (_, machines) = call(lab_machines, &request("fleet-original.nix"));
    assert_eq!(machines.as_object().unwrap().len(), 5, "{machines}");
}

#[test]
fn a_fleet_managing_nothing_is_not_clean() {
    setup();
    if lab_testkit::nixpkgs_lib().is_none() {
        return;
    }
    let (status, error) = call(lab_machines, &request("fleet-unmanaged.nix"));
    assert_eq!(status, LabStatus::LabErrNotClean, "{error}");
    assert_eq!(error["kind"], "fleet");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("nixosModules.lab-machine") && message.contains("set lab.machine"), "{message}");

    // A run refuses it the same way.
    let mut request = request("fleet-unmanaged.nix");
    request["dryRun"] = json!(true);
    let request = CString::new(request.to_string()).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: a valid request, no callback, no cancel handle, a valid out slot.
    let status = unsafe { lab_reboot(request.as_ptr(), None, std::ptr::null_mut(), std::ptr::null(), &mut out) };
    // SAFETY: lab's string, freed once.
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    unsafe { lab_string_free(out) };
    assert_eq!(status, LabStatus::LabErrNotClean, "{text}");
    assert!(text.contains("nixosModules.lab-machine"), "{text}");
}

#[test]
fn guile_nix_integration_returns_the_machines_of_the_original_module() {
    setup();
    if lab_testkit::nixpkgs_lib().is_none() {
        return;
    }
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = tempfile::tempdir().unwrap();
    // What the same hosts give on lab's own module.
    let (_, machines) = call(lab_machines, &request("fleet-lab.nix"));
    let (_, sequence) = call(lab_sequence, &request("fleet-lab.nix"));
    let expected = json!({
        "names": machines.as_object().unwrap().keys().collect::<Vec<_>>(),
        "machines": machines,
        "sequence": sequence.as_array().unwrap().iter().map(|e| e["machine"].clone()).collect::<Vec<_>>(),
    });
    let expected_file = cache.path().join("expected.json");
    std::fs::write(&expected_file, expected.to_string()).unwrap();
    let lib = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("liblab.so");

    let out = Command::new("guile")
        .args(["--no-auto-compile", "-L"])
        .arg(crate_dir.join("guile"))
        .arg(crate_dir.join("tests/guile/test-original-module.scm"))
        .env("LAB_FFI_LIB", lib)
        .env("LAB_FLEET_FILE", fixture("fleet-original.nix"))
        .env("EXPECTED", &expected_file)
        .env("XDG_CACHE_HOME", cache.path())
        .current_dir(cache.path())
        .output()
        .expect("guile runs (./dev setup installs guile-3.0 and guile-json)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "guile tests failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("# of expected passes      3"), "{stdout}");
    assert!(!stdout.contains("# of unexpected failures"), "{stdout}");
}

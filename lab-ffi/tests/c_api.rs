//! Compiles tests/c/test_lab.c against include/lab.h with the system C
//! compiler, links it to the built cdylib, and runs it under valgrind with
//! leak checking.

use std::path::Path;
use std::process::Command;

mod common;
use common::lib_dir;

#[test]
fn c_program_uses_every_function() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = lib_dir();
    assert!(
        lib_dir.join("liblab.so").exists(),
        "liblab.so not built in {}; run `cargo build -p lab-ffi` first (./dev test does)",
        lib_dir.display()
    );
    let out_dir = tempfile::tempdir().unwrap();
    let exe = out_dir.path().join("test_lab");
    let status = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-o"])
        .arg(&exe)
        .arg(crate_dir.join("tests/c/test_lab.c"))
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-llab")
        .arg("-pthread")
        .status()
        .expect("cc runs (./dev setup installs gcc)");
    assert!(status.success(), "the C test program does not compile");

    let fleet = crate_dir.join("../lab-core/tests/fixtures/fleets/example.json");
    // The leak check is half of what this test proves: without valgrind it
    // does not run (and fails under CI).
    if !lab_testkit::require_program("valgrind", &["--version"], "install valgrind (./dev setup does)") {
        return;
    }
    let mut cmd = Command::new("valgrind");
    cmd.args(["--quiet", "--error-exitcode=3", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect"]);
    cmd.arg(&exe);
    let probe = crate_dir.join("tests/fixtures/controller-check.json");
    let state = tempfile::tempdir().unwrap();
    let loopback = crate_dir.join("tests/fixtures/loopback.json");
    let out = cmd
        .arg(fleet.canonicalize().unwrap())
        .arg(probe.canonicalize().unwrap())
        .arg(state.path())
        .arg(loopback.canonicalize().unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "C test failed ({:?}):\n{stderr}", out.status.code());
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}

#[test]
fn c_example_prints_the_sequence() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let lib_dir = lib_dir();
    let out_dir = tempfile::tempdir().unwrap();
    let exe = out_dir.path().join("sequence");
    let status = Command::new("cc")
        .args(["-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(root.join("examples/c/sequence.c"))
        .arg("-I")
        .arg(root.join("lab-ffi/include"))
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-llab")
        .status()
        .unwrap();
    assert!(status.success());
    let fleet = root.join("lab-core/tests/fixtures/fleets/example.json");
    let request = serde_json::json!({"jsonFile": fleet, "maxParallel": 2}).to_string();
    let out = Command::new(&exe).arg(request).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sequence: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sequence[0]["machine"], "router");
    assert_eq!(sequence.as_array().unwrap().len(), 7);
    let bad = Command::new(&exe).arg("{\"on\": \"@nothing\", \"jsonFile\": \"/nonexistent\"}").output().unwrap();
    assert_eq!(bad.status.code(), Some(3), "an evaluation error is status 3");
}

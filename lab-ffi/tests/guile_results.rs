//! The Guile module's results and errors: `lab-check` and `lab-health`
//! return a report that is merely not clean (no exception with an empty
//! message), real errors still raise with lab's message, and a library that
//! cannot be loaded names LAB_FFI_LIB and how to build it.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::lib_dir;

/// Runs `script` with guile, (lab ffi) on the load path, LAB_FFI_LIB = `lib`.
fn guile(script: &str, lib: &Path, dir: &Path) -> Output {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("guile")
        .args(["--no-auto-compile", "-L"])
        .arg(crate_dir.join("guile"))
        .args(["-c", script])
        .env("LAB_FFI_LIB", lib)
        .env("XDG_CACHE_HOME", dir)
        .current_dir(dir)
        .output()
        .expect("guile runs (./dev installs guile-3.0 and guile-json)")
}

fn write_fleet(dir: &Path, name: &str, fleet: serde_json::Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, fleet.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn check_and_health_return_a_report_that_is_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    // An unknown dependency: `lab check` is not clean.
    let broken = write_fleet(
        dir.path(),
        "broken.json",
        serde_json::json!({"a": {"role": "r", "rebootOrder": 0, "dependencies": ["nope"], "targetHost": "a.example"}}),
    );
    // A required check that fails from the controller (a documentation
    // address: never answered), so `lab health` is not clean.
    let unhealthy = write_fleet(
        dir.path(),
        "unhealthy.json",
        serde_json::json!({"b": {"role": "r", "rebootOrder": 1, "targetHost": "b.example",
            "healthChecks": [{"type": "tcp", "host": "192.0.2.1", "port": 9, "runOn": "controller", "timeout": 1}]}}),
    );
    let script = format!(
        r#"
(use-modules (lab ffi) (ice-9 exceptions))
(define report (lab-check '(("jsonFile" . {broken:?}))))
(unless (eq? (assoc-ref report "clean") #f) (error "check: not clean expected" report))
(unless (> (vector-length (assoc-ref report "problems")) 0) (error "check: problems expected" report))
(display "check-returned\n")
(define health (lab-health '(("jsonFile" . {unhealthy:?}))))
(display "health-returned\n")
(write health) (newline)
;; A real error still raises, with lab's message.
(guard (e ((lab-error? e)
           (when (string-null? (lab-error-message e)) (error "empty message"))
           (format #t "raised: ~a\n" (lab-error-message e))))
  (lab-check '(("jsonFile" . "/nonexistent/fleet.json")))
  (error "no exception for a missing fleet"))
"#
    );
    let out = guile(&script, &lib_dir().join("liblab.so"), dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("check-returned\nhealth-returned\n"), "{stdout}");
    // The health report says the check failed.
    assert!(stdout.contains("192.0.2.1"), "{stdout}");
    assert!(stdout.contains("raised: ") && stdout.contains("/nonexistent/fleet.json"), "{stdout}");
}

#[test]
fn a_missing_library_says_to_set_lab_ffi_lib() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-liblab.so");
    let script = r#"
(use-modules (ice-9 exceptions))
(guard (e (#t (format #t "message: ~a\n" (exception-message e))))
  (resolve-interface '(lab ffi))
  (display "loaded?\n"))
"#;
    let out = guile(script, &missing, dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let message = stdout.lines().find_map(|l| l.strip_prefix("message: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        message.contains(&format!("cannot load lab's C library from \"{}\" (LAB_FFI_LIB)", missing.display())),
        "{message}"
    );
    assert!(message.contains("cargo build -p lab-ffi") && message.contains("set LAB_FFI_LIB"), "{message}");
    assert!(message.contains("no-such-liblab.so"), "the loader's own reason stays: {message}");
}

//! What lab's tests share across crates.
//!
//! A test that needs a real part of the machine (nixpkgs' lib, valgrind,
//! guile, sshd, network namespaces, nix) asks for it here. When the part is
//! missing, the test fails under `CI=true`, saying what is missing and how to
//! get it; elsewhere it skips, and the skip is written to the file named by
//! `LAB_TEST_SKIP_LOG` so that `./dev test` ends with the count and the names
//! of the tests that did not run. A skip is never silent.
//!
//! It also holds the test hosts ([`http`] and TCP servers on loopback, real
//! [`sshd`] hosts), the property tests' seedable [`rng`], and the evaluation
//! of lab-orchestrator.nix ([`orchestrator_eval`]). The simulated fleet
//! stays in lab-core/tests/common: it implements lab-core's `Executor`, and
//! lab-core's own unit tests use it, which a crate depending on lab-core
//! cannot give them (they would see another copy of the trait).

#![deny(missing_docs)]

pub mod http;
pub mod orchestrator_eval;
pub mod rng;
pub mod sshd;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository's root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit sits in the workspace").to_path_buf()
}

/// True when running in CI (`CI=true`), where nothing may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The name of the running test (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current().name().unwrap_or("unnamed test").to_string()
}

/// Reports that the running test cannot run because `what` is missing, with
/// `hint` saying how to get it. Panics under CI; elsewhere records the skip
/// and returns, and the caller returns at once.
pub fn missing(what: &str, hint: &str) {
    let test = test_name();
    let line = format!("{test} ({}): {what} is missing; {hint}", env!("CARGO_PKG_NAME"));
    if in_ci() {
        panic!("{line} (CI=true: nothing may skip)");
    }
    eprintln!("SKIPPED {line}");
    if let Some(log) = std::env::var_os("LAB_TEST_SKIP_LOG") {
        // Appends are atomic enough for one short line per test.
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{test}: {what} is missing");
        }
    }
}

/// nixpkgs' `lib/` directory: `LAB_NIXPKGS_LIB`, else the pinned copy in the
/// shared folder beside the project root (`../shared/nixpkgs-lib/lib`). None
/// (reported through [`missing`]) when neither exists.
pub fn nixpkgs_lib() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LAB_NIXPKGS_LIB") {
        let path = PathBuf::from(path);
        assert!(
            path.join("default.nix").exists(),
            "LAB_NIXPKGS_LIB={} has no default.nix; point it at nixpkgs' lib directory",
            path.display()
        );
        return Some(path);
    }
    let shared = repo_root().join("../shared/nixpkgs-lib/lib");
    if shared.join("default.nix").exists() {
        return Some(shared.canonicalize().unwrap_or(shared));
    }
    missing(
        "nixpkgs' lib",
        "set LAB_NIXPKGS_LIB to a nixpkgs lib/ directory (../shared/nixpkgs-lib/lib beside the project root is used when present)",
    );
    None
}

/// True when `program` runs (`program ARGS` exits 0); otherwise reports it
/// missing with `hint` and returns false.
pub fn require_program(program: &str, args: &[&str], hint: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        missing(program, hint);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_part_fails_under_ci_and_is_logged_elsewhere() {
        // Runs the check in a child test process so the environment it sees is its own.
        if std::env::var_os("LAB_TESTKIT_CHILD").is_some() {
            missing("a part no machine has", "nothing to install");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let dir = std::env::temp_dir().join(format!("lab-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skipped.txt");
        let run = |ci: &str| {
            Command::new(&exe)
                .args(["--exact", "tests::a_missing_part_fails_under_ci_and_is_logged_elsewhere", "--test-threads=1"])
                .env("LAB_TESTKIT_CHILD", "1")
                .env("CI", ci)
                .env("LAB_TEST_SKIP_LOG", &log)
                .output()
                .unwrap()
        };
        let ci = run("true");
        assert!(!ci.status.success(), "under CI a missing part fails the test");
        let said = format!("{}{}", String::from_utf8_lossy(&ci.stdout), String::from_utf8_lossy(&ci.stderr));
        assert!(said.contains("a part no machine has is missing"), "{said}");
        assert!(!log.exists(), "a CI failure is no skip");
        let local = run("false");
        assert!(local.status.success(), "outside CI it skips");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            logged,
            "tests::a_missing_part_fails_under_ci_and_is_logged_elsewhere: a part no machine has is missing\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

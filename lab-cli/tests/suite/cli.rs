//! The `lab` binary end to end on lab-core's fixture fleets, with real nix.
//! Each run gets its own XDG_CACHE_HOME.

use std::path::{Path, PathBuf};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures")
}

fn fleet(name: &str) -> String {
    fixtures().join("fleets").join(name).display().to_string()
}

fn lab_with(args: &[&str], path: Option<&str>) -> Run {
    let cache = tempfile::tempdir().unwrap();
    let mut command = crate::util::lab();
    command.args(args).env("XDG_CACHE_HOME", cache.path());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    // Absolute paths differ between checkouts; snapshots show them relative.
    let root = fixtures().canonicalize().unwrap().display().to_string();
    let clean = |b: &[u8]| String::from_utf8_lossy(b).replace(&root, "<fixtures>");
    Run { code: output.status.code().unwrap_or(-1), stdout: clean(&output.stdout), stderr: clean(&output.stderr) }
}

fn lab(args: &[&str]) -> Run {
    lab_with(args, None)
}

#[test]
fn machines_table_and_json() {
    let table = lab(&["machines", "--file", &fleet("fleet-5.nix")]);
    assert_eq!((table.code, table.stderr.as_str()), (0, ""));
    insta::assert_snapshot!("machines_table", table.stdout);
    let json = lab(&["machines", "--json", "--file", &fleet("fleet-5.nix")]);
    assert_eq!(json.code, 0);
    insta::assert_snapshot!("machines_json", json.stdout);

    // The JSON contract reads back to the same fleet, without nix.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.json");
    std::fs::write(&file, &json.stdout).unwrap();
    let again = lab_with(&["machines", "--json", "--json-file", file.to_str().unwrap()], Some(""));
    assert_eq!((again.code, again.stdout), (0, json.stdout));
}

#[test]
fn show_one_machine_or_suggest() {
    let shown = lab(&["show", "node-01", "--file", &fleet("fleet-5.nix")]);
    assert_eq!(shown.code, 0);
    insta::assert_snapshot!("show", shown.stdout);
    let unknown = lab(&["show", "node-1", "--file", &fleet("fleet-5.nix")]);
    assert_eq!(unknown.code, 2);
    assert_eq!(unknown.stderr, "error: no machine named `node-1` (did you mean `node-01`?)\n");
}

#[test]
fn a_broken_fleet_lists_the_healthy_hosts_and_exits_1() {
    let run = lab(&["machines", "--file", &fleet("broken.nix")]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout.lines().count(), 6, "{}", run.stdout);
    insta::assert_snapshot!("machines_broken_stderr", run.stderr);
}

#[test]
fn check_reports_everything_at_once() {
    let clean = lab(&["check", "--file", &fleet("fleet-5.nix")]);
    assert_eq!(
        (clean.code, clean.stdout.as_str()),
        (0, "5 machines checked: 0 failed to evaluate, 0 errors, 0 warnings\n")
    );

    let broken = lab(&["check", "--file", &fleet("broken.nix")]);
    assert_eq!(broken.code, 1);
    insta::assert_snapshot!("check_broken", broken.stdout);
    let json = lab(&["check", "--json", "--file", &fleet("broken.nix")]);
    assert_eq!(json.code, 1);
    insta::assert_snapshot!("check_broken_json", json.stdout);

    let problems = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/problems.json");
    let run = lab(&["check", "--json-file", problems.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("check_problems", run.stdout);
}

#[test]
fn errors_are_one_line_saying_what_to_do() {
    let no_nix = lab_with(&["machines", "--file", &fleet("fleet-5.nix")], Some("/nonexistent"));
    assert_eq!(no_nix.code, 2);
    assert_eq!(no_nix.stderr, "error: nix-instantiate is not on PATH; install Nix (e.g. `apt-get install nix-bin`) or read a snapshot with --json-file\n");

    let no_flake = lab(&["machines", "--flake", "/nonexistent/fleet"]);
    assert_eq!(no_flake.code, 2);
    assert_eq!(no_flake.stderr, "error: no fleet at /nonexistent/fleet: it does not exist; pass --flake with a directory holding flake.nix, or a flake reference\n");

    let syntax = lab(&["machines", "--file", &fleet("syntax-error.nix")]);
    assert_eq!(syntax.code, 2);
    assert_eq!(syntax.stderr.lines().count(), 1, "{}", syntax.stderr);
    assert!(
        syntax.stderr.contains("syntax error") && syntax.stderr.contains("syntax-error.nix:2"),
        "{}",
        syntax.stderr
    );

    let slow = lab(&["machines", "--file", &fleet("slow.nix"), "--eval-timeout", "0.3"]);
    assert_eq!(slow.code, 2);
    assert_eq!(slow.stderr, "error: evaluation exceeded --eval-timeout (0.3s) and was stopped; still evaluating: `slow`; finished: none; look for a loop or a slow import in the hosts still evaluating, or raise --eval-timeout\n");
}

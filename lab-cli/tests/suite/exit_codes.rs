//! One exit-code table for every command (README, "Commands"): a fleet
//! that is not clean exits 1 whether a read command or a run meets it,
//! dry or not; a usage error exits 2.

use std::path::Path;

fn problems() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/problems.json").display().to_string()
}

#[test]
fn fleet_problems_exit_1_from_read_commands_and_refused_runs_alike() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let fleet = problems();
    let commands: &[&[&str]] = &[
        &["check"],
        &["sequence"],
        &["graph"],
        &["plan", "reboot"],
        &["deploy", "--dry-run", "--state-dir", dir],
        &["reboot", "--dry-run", "--state-dir", dir],
        &["reboot", "--no-delay", "--state-dir", dir],
        &["orchestrate", "--dry-run", "--state-dir", dir],
    ];
    for command in commands {
        let out = crate::util::lab().arg("--json-file").arg(&fleet).args(*command).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "lab {command:?}: {stderr}");
        assert!(stderr.contains("no machine is called `db-1`") || command == &["check"], "lab {command:?}: {stderr}");
    }
    assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0, "a refused run writes nothing");
}

#[test]
fn a_selection_that_matches_nothing_is_a_usage_error_for_runs_too() {
    let state = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../lab-core/tests/fixtures/fleets/example.json")
        .display()
        .to_string();
    for command in [&["sequence", "--on", "nope"][..], &["deploy", "--dry-run", "--on", "nope", "--state-dir"]] {
        let out = crate::util::lab()
            .arg("--json-file")
            .arg(&example)
            .args(command)
            .args(command.last().filter(|a| **a == "--state-dir").map(|_| state.path()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "lab {command:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn help_shows_the_exit_code_table() {
    let out = crate::util::lab().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for code in ["0  ok", "1  the fleet or a machine is not clean", "2  usage", "3  another run", "4  interrupted"] {
        assert!(help.contains(code), "{help}");
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    for row in [
        "| 0 | ok",
        "| 1 | the fleet or a machine is not clean",
        "| 2 | usage",
        "| 3 | another run",
        "| 4 | interrupted",
    ] {
        assert!(readme.contains(row), "README lacks the exit-code row `{row}`");
    }
}

#[test]
fn a_fleet_that_manages_nothing_exits_1_from_runs_as_from_read_commands() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    std::fs::write(&file, "{ nixosConfigurations = { a.config.networking.hostName = \"a\"; }; }\n").unwrap();
    let (file, state) = (file.to_str().unwrap(), dir.path().join("state"));
    let state = state.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["sequence"],
        &["reboot", "--dry-run", "--state-dir", state],
        &["deploy", "--dry-run", "--state-dir", state],
        &["orchestrate", "--dry-run", "--state-dir", state],
    ];
    for command in commands {
        let out = crate::util::lab()
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .args(["--file", file])
            .args(*command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "lab {command:?}: {stderr}");
        assert!(stderr.contains("nixosModules.lab-machine"), "lab {command:?}: {stderr}");
    }
}

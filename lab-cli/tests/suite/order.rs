//! `lab sequence`, `lab graph` and `lab plan` on the example fleet, run as
//! the built binary; outputs are insta snapshots.

use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets").join(name)
}

/// Runs `lab --json-file FIXTURE ARGS...`: (stdout, stderr, exit code).
fn lab_on(fleet: &str, args: &[&str]) -> (String, String, i32) {
    let out = crate::util::lab().arg("--json-file").arg(fixture(fleet)).args(args).output().expect("lab runs");
    (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap(), out.status.code().unwrap_or(-1))
}

/// stdout of a successful run on the example fleet.
fn lab(args: &[&str]) -> String {
    let (stdout, stderr, code) = lab_on("example.json", args);
    assert_eq!(code, 0, "lab {args:?} failed: {stderr}");
    assert_eq!(stderr, "");
    stdout
}

#[test]
fn sequence() {
    insta::assert_snapshot!("sequence", lab(&["sequence"]));
    insta::assert_snapshot!("sequence_parallel_3", lab(&["sequence", "--max-parallel", "3"]));
    insta::assert_snapshot!("sequence_json", lab(&["sequence", "--json"]));
}

#[test]
fn graph() {
    insta::assert_snapshot!("graph_dot", lab(&["graph", "--max-parallel", "3"]));
    insta::assert_snapshot!("graph_mermaid", lab(&["graph", "--format", "mermaid", "--max-parallel", "3"]));
    insta::assert_snapshot!("graph_json_dns", lab(&["graph", "--format", "json", "--on", "@dns", "--with-dependents"]));
}

#[test]
fn plan() {
    insta::assert_snapshot!("plan_reboot", lab(&["plan", "reboot", "--max-parallel", "3"]));
    insta::assert_snapshot!(
        "plan_deploy_on",
        lab(&["plan", "deploy", "--on", "sleeper-service", "--with-dependencies"])
    );
    insta::assert_snapshot!("plan_reboot_json", lab(&["plan", "reboot", "--on", "role:dns", "--json"]));
}

#[test]
fn the_total_estimate_is_the_sum_of_the_slowest_machine_of_each_wave() {
    let plan: serde_json::Value =
        serde_json::from_str(&lab(&["plan", "reboot", "--max-parallel", "3", "--json"])).unwrap();
    let waves = plan["waves"].as_array().unwrap();
    let slowest = |w: &serde_json::Value| {
        w["machines"].as_array().unwrap().iter().map(|m| m["estimatedSeconds"].as_u64().unwrap()).max().unwrap()
    };
    assert_eq!(plan["estimatedSeconds"].as_u64().unwrap(), waves.iter().map(slowest).sum::<u64>());
}

#[test]
fn a_selection_that_matches_nothing_is_an_error() {
    let (stdout, stderr, code) = lab_on("example.json", &["plan", "reboot", "--on", "nas,dsn1"]);
    assert_eq!((stdout.as_str(), code), ("", 2));
    assert_eq!(stderr, "error: --on \"nas,dsn1\": `dsn1` selects no machine (did you mean `dns1`?)\n");
}

#[test]
fn a_broken_graph_exits_1_with_every_problem() {
    let (stdout, stderr, code) = lab_on("cycle.json", &["sequence"]);
    assert_eq!((stdout.as_str(), code), ("", 1));
    insta::assert_snapshot!("broken_graph_stderr", stderr);
}

#[test]
fn fleet_settings_set_the_limits_and_flags_override_them() {
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/../hosts/fleet.nix");
    let cache = tempfile::tempdir().unwrap();
    let waves = |extra: &[&str]| {
        let out = crate::util::lab()
            .args(["--file", fleet, "sequence", "--json"])
            .args(extra)
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        entries.as_array().unwrap().iter().map(|e| e["wave"].as_u64().unwrap()).max().unwrap()
    };
    assert_eq!(waves(&[]), 4, "hosts/lab.nix sets maxParallel = 2");
    assert_eq!(waves(&["--max-parallel", "1"]), 7, "the flag wins");
}

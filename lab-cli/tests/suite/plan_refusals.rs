//! `lab plan` reports every problem the real run would refuse for, and a
//! dry run refuses as the real run would, with the same exit code: a plan
//! is never shown for a run that cannot start.

use std::path::Path;
use std::process::Output;

/// The example fleet with nas's rebootDelay over a year (which `reboot`
/// refuses) and dns2's healthyDeadline negative.
fn broken_fleet(dir: &Path) -> String {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/example.json");
    let mut fleet: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    fleet["nas"]["orchestration"]["rebootDelay"] = 40_000_000.into();
    fleet["dns2"]["orchestration"]["healthyDeadline"] = (-1).into();
    let path = dir.join("fleet.json");
    std::fs::write(&path, fleet.to_string()).unwrap();
    path.display().to_string()
}

fn lab(dir: &Path, args: &[&str]) -> Output {
    crate::util::lab()
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .output()
        .unwrap()
}

#[test]
fn plan_and_dry_run_refuse_what_the_real_run_refuses_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = broken_fleet(dir.path());
    for args in [
        &["plan", "reboot"][..],
        &["plan", "deploy"],
        &["reboot", "--dry-run"],
        &["reboot", "--dry-run", "--json"],
        &["reboot"],
    ] {
        let mut all = vec!["--json-file", fleet.as_str()];
        all.extend(args);
        let out = lab(dir.path(), &all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "lab {args:?}: the fleet is not clean\n{stderr}");
        assert!(
            out.stdout.is_empty(),
            "lab {args:?}: no plan for a refused run: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("nas") && stderr.contains("40000000 seconds is more than a year"),
            "lab {args:?}: {stderr}"
        );
        assert!(stderr.contains("dns2") && stderr.contains("healthyDeadline"), "lab {args:?}: {stderr}");
    }
    assert!(!dir.path().join("state").exists(), "nothing ran");
}

//! The example fleet in hosts/: its Nix-file mirror reads clean, and (with
//! nixpkgs' lib) equals what the real module makes of each host's lab.nix.

use std::path::{Path, PathBuf};
use std::process::Command;

use lab_core::metadata::{parse_fleet_json, validate};
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn nix_eval(args: &[&str]) -> Value {
    let out = Command::new("nix-instantiate").args(["--eval", "--strict", "--json"]).args(args).output().unwrap();
    assert!(out.status.success(), "nix failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The mirror's metadata, keyed by machine name.
fn mirror() -> Value {
    let file = root().join("hosts/fleet.nix");
    nix_eval(&[
        "--expr",
        "{ f }: builtins.mapAttrs (n: c: c.config.lab.metadata) (import f).nixosConfigurations",
        "--arg",
        "f",
        file.to_str().unwrap(),
    ])
}

#[test]
fn example_fleet_reads_clean_and_uses_every_strategy_and_criticality() {
    let fleet = parse_fleet_json(&mirror().to_string(), None).expect("the example fleet parses");
    assert!(fleet.len() >= 6);
    for (name, machine) in &fleet {
        assert_eq!(validate(name, &machine.metadata), vec![], "{name}");
        for dep in &machine.metadata.dependencies {
            assert!(fleet.contains_key(dep), "{name} depends on unknown {dep}");
        }
        let dir = root().join("hosts").join(name);
        assert!(dir.join("configuration.nix").exists() && dir.join("lab.nix").exists(), "hosts/{name}");
    }
    let strategies: std::collections::BTreeSet<_> =
        fleet.values().map(|m| m.metadata.orchestration.deploy_strategy).collect();
    let levels: std::collections::BTreeSet<_> =
        fleet.values().map(|m| m.metadata.orchestration.criticality_level).collect();
    assert_eq!(strategies.len(), 3, "every deploy strategy is used");
    assert_eq!(levels.len(), 4, "every criticality level is used");
}

#[test]
fn mirror_equals_the_module_evaluation() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let mirror = mirror();
    for (name, expected) in mirror.as_object().unwrap() {
        let lab = nix_eval(&[root().join("hosts").join(name).join("lab.nix").to_str().unwrap()]);
        let host = json!({"networking": {"hostName": name}, "lab": {"machine": lab}});
        let result = nix_eval(&[
            root().join("lab-core/tests/fixtures/module/eval-module.nix").to_str().unwrap(),
            "--arg",
            "libPath",
            Path::new(&lib).to_str().unwrap(),
            "--arg",
            "modulePath",
            root().join("nix/modules/lab-machine.nix").to_str().unwrap(),
            "--argstr",
            "hostJSON",
            &host.to_string(),
        ]);
        assert_eq!(result["failed"], json!([]), "{name}: module assertions");
        let mut actual: Value = serde_json::from_str(result["etc"].as_str().unwrap()).unwrap();
        let mut expected = expected.clone();
        // Services come from the full NixOS configuration, not from lab.nix.
        actual.as_object_mut().unwrap().remove("services");
        expected.as_object_mut().unwrap().remove("services");
        assert_eq!(actual, expected, "{name}: hosts/fleet.nix differs from the module's result");
    }
}

#[test]
fn json_snapshot_of_the_example_fleet_is_current() {
    // lab-core/tests/fixtures/fleets/example.json feeds the tests that need no
    // nix; it must stay what hosts/ says.
    let path = root().join("lab-core/tests/fixtures/fleets/example.json");
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        committed == mirror(),
        "{} is stale; regenerate it from hosts/fleet.nix (see the comment in hosts/fleet.nix)",
        path.display()
    );
}

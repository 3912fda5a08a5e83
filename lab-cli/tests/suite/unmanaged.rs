//! A fleet whose configurations carry no lab metadata is an error that says
//! how to fix it (exit 1, the fleet is not clean), while one that sets
//! `lab.machine` without lab's module is read (real nix).

use std::path::Path;
use std::process::Output;

fn lab(cache: &Path, args: &[&str]) -> Output {
    crate::util::lab().env("XDG_CACHE_HOME", cache).args(args).output().unwrap()
}

#[test]
fn a_fleet_that_manages_nothing_exits_1_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    std::fs::write(
        &file,
        "{ nixosConfigurations = {\n  a.config.networking.hostName = \"a\";\n  b.config.services = { };\n}; }\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for command in [&["check"][..], &["machines", "--json"], &["sequence"]] {
        let out = lab(dir.path(), &[&["--file", file][..], command].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "lab {command:?}: {stderr}");
        assert!(stderr.contains("no configuration of file"), "{stderr}");
        assert!(stderr.contains("nixosModules.lab-machine") && stderr.contains("set lab.machine"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn lab_machine_set_without_labs_module_is_read() {
    let cache = tempfile::tempdir().unwrap();
    let fleet =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/original-module/fleet-direct.nix");
    let out = lab(cache.path(), &["--file", fleet.to_str().unwrap(), "check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let out = lab(cache.path(), &["--file", fleet.to_str().unwrap(), "machines", "--json"]);
    let machines: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&String> = machines.as_object().unwrap().keys().collect();
    assert_eq!(names, ["db", "dns1", "sleeper-service", "web", "worker"]);
    assert_eq!(machines["worker"]["targetHost"], "worker", "the module's default, applied by lab");
    assert_eq!(machines["worker"]["orchestration"]["rebootDelay"], 600);
}

//! Fleets on the original design's `lab.machine` module (which defines only
//! `options.lab.machine`, no `lab.metadata`), or setting `lab.machine`
//! directly, read as the same fleet as on lab's own module: same machines,
//! same order, same plan. Real nix, configurations built with nixpkgs' real
//! `lib.evalModules` (tests/fixtures/original-module).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use lab_core::eval::{evaluate, EvalError, EvalOptions, Evaluation, Source};
use lab_core::graph::{self, Expand, Limits};
use lab_core::plan::{Plan, PlanKind};

fn fixture(name: &str) -> Source {
    Source::File(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/original-module").join(name))
}

/// No cache: every read is a fresh nix evaluation of the fixture.
fn read(name: &str) -> Result<Evaluation, EvalError> {
    evaluate(&fixture(name), &EvalOptions { jobs: 2, ..EvalOptions::default() })
}

/// What the fleet is as lab uses it: the sequence and both plans, at two
/// parallelism limits, as the JSON `lab … --json` prints.
fn order(evaluation: &Evaluation) -> serde_json::Value {
    let fleet = graph::ordered(evaluation, None, Expand::default()).unwrap();
    let mut out = serde_json::Map::new();
    for parallel in [1, 2] {
        let limits = Limits::parallel(NonZeroUsize::new(parallel).unwrap());
        out.insert(format!("sequence-{parallel}"), serde_json::to_value(fleet.sequence(&limits)).unwrap());
        for kind in [PlanKind::Reboot, PlanKind::Deploy] {
            let plan = serde_json::to_value(Plan::new(kind, &fleet, &limits)).unwrap();
            out.insert(format!("plan-{kind:?}-{parallel}"), plan);
        }
    }
    out.into()
}

#[test]
fn the_original_module_reads_as_labs_module() {
    if lab_testkit::nixpkgs_lib().is_none() {
        return;
    }
    let lab = read("fleet-lab.nix").unwrap();
    let original = read("fleet-original.nix").unwrap();
    assert!(lab.is_clean() && lab.unmanaged.is_empty(), "{lab:?}");
    assert_eq!(lab.machines.keys().collect::<Vec<_>>(), ["db", "dns1", "sleeper-service", "web", "worker"]);
    assert_eq!(original, lab, "the same machines, hostnames, services, defaults and settings");
    // Byte for byte what `lab machines --json` prints.
    assert_eq!(serde_json::to_string(&original.machines).unwrap(), serde_json::to_string(&lab.machines).unwrap());
    assert_eq!(order(&original), order(&lab));

    // The defaults lab's module fills in, here applied in Rust.
    let worker = &original.machines["worker"];
    assert_eq!(worker.metadata.target_host.as_deref(), Some("worker"), "targetHost defaults to networking.hostName");
    assert_eq!(worker.metadata.target_port, 22);
    assert_eq!(worker.metadata.orchestration, lab_core::metadata::Orchestration::default());
    assert_eq!(original.machines["sleeper-service"].services, ["nginx", "postgresql"]);
    assert_eq!(original.machines["dns1"].target_host(), "dns1.lab.internal");
}

#[test]
fn lab_machine_set_directly_reads_as_labs_module() {
    if lab_testkit::nixpkgs_lib().is_none() {
        return;
    }
    let lab = read("fleet-lab.nix").unwrap();
    let direct = read("fleet-direct.nix").unwrap();
    assert_eq!(direct, lab);
    assert_eq!(order(&direct), order(&lab));
}

#[test]
fn the_modules_rules_apply_in_rust() {
    if lab_testkit::nixpkgs_lib().is_none() {
        return;
    }
    let evaluation = read("fleet-invalid.nix").unwrap();
    // A tcp check without a port (lab's module asserts it) leaves the
    // machine unreadable, named, with the field and the fix.
    assert_eq!(evaluation.failures.len(), 1, "{evaluation:?}");
    let failure = &evaluation.failures[0];
    assert_eq!(failure.machine, "no-port");
    assert!(failure.message.starts_with("lab.machine healthChecks[0]"), "{}", failure.message);
    assert!(failure.message.contains("a tcp check needs `port`"), "{}", failure.message);
    // A negative rebootDelay (an assertion of lab's module) is a check error.
    let report = lab_core::check::check(&evaluation);
    assert!(!report.clean);
    let negative: Vec<_> = report.problems.iter().filter(|p| p.machine == "negative").collect();
    assert_eq!(negative.len(), 1, "{report:?}");
    assert_eq!(negative[0].field, "orchestration.rebootDelay");
    assert!(report.problems.iter().all(|p| p.machine != "fine"), "{report:?}");
}

#[test]
fn a_fleet_that_manages_nothing_is_an_error_saying_how_to_fix_it() {
    if lab_testkit::nixpkgs_lib().is_none() {
        return;
    }
    let err = read("fleet-unmanaged.nix").unwrap_err();
    let EvalError::NothingManaged { unmanaged, .. } = &err else { panic!("{err:?}") };
    assert_eq!(unmanaged, &["bare", "plain"]);
    let message = err.to_string();
    for part in ["no configuration of file", "all 2 (`bare`, `plain`)", "nixosModules.lab-machine", "set lab.machine"] {
        assert!(message.contains(part), "{part:?} in {message}");
    }

    // Not from the cache either: an empty fleet is never stored as a hit.
    let dir = tempfile::tempdir().unwrap();
    let options =
        EvalOptions { cache_impure: true, cache_dir: Some(dir.path().to_path_buf()), ..EvalOptions::default() };
    for _ in 0..2 {
        let err = evaluate(&fixture("fleet-unmanaged.nix"), &options).unwrap_err();
        assert!(matches!(err, EvalError::NothingManaged { .. }), "{err:?}");
    }
}

#[test]
fn a_fleet_without_configurations_is_the_same_error() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("empty.nix");
    std::fs::write(&file, "{ nixosConfigurations = { }; }\n").unwrap();
    let err = evaluate(&Source::File(file), &EvalOptions::default()).unwrap_err();
    let EvalError::NothingManaged { unmanaged, .. } = &err else { panic!("{err:?}") };
    assert!(unmanaged.is_empty());
    assert!(err.to_string().contains("has no configurations"), "{err}");
}

//! The Guile modules against the built liblab: the original five exports
//! return what lab-core returns for the same fleet, errors raise, and a loop
//! of 10,000 calls does not grow memory.

use std::path::Path;
use std::process::Command;

use lab_core::eval::{evaluate, EvalOptions, Source};
use lab_core::graph::{Fleet, Limits};
use serde_json::json;

mod common;
use common::lib_dir;

#[test]
fn guile_module_matches_lab_core() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir.parent().unwrap();
    let fleet_file = root.join("hosts/fleet.nix");
    let cache = tempfile::tempdir().unwrap();

    // What lab-core (and so `lab … --json`) says about the fleet.
    let options = EvalOptions { cache_dir: Some(cache.path().to_path_buf()), ..EvalOptions::default() };
    let evaluation = evaluate(&Source::File(fleet_file.clone()), &options).unwrap();
    let fleet = Fleet::from_map(&evaluation.machines).unwrap();
    // The fleet's own settings (hosts/lab.nix) set the limits, as for the CLI.
    let limits = Limits {
        max_parallel: evaluation.settings.max_parallel.unwrap_or(std::num::NonZeroUsize::MIN),
        max_unavailable_per_group: evaluation.settings.max_unavailable_per_group,
    };
    let sequence = fleet.sequence(&limits);
    let expected = json!({
        "names": evaluation.machines.keys().collect::<Vec<_>>(),
        "machines": evaluation.machines,
        "sequence": sequence.iter().map(|e| e.machine.clone()).collect::<Vec<_>>(),
        "waves": sequence.iter().map(|e| e.wave).max().unwrap_or(0),
    });
    let expected_file = cache.path().join("expected.json");
    std::fs::write(&expected_file, expected.to_string()).unwrap();

    let out = Command::new("guile")
        .args(["--no-auto-compile", "-L"])
        .arg(crate_dir.join("guile"))
        .arg(crate_dir.join("tests/guile/test-lab.scm"))
        .env("LAB_FFI_LIB", lib_dir().join("liblab.so"))
        .env("LAB_FLEET_FILE", &fleet_file)
        .env("LAB_JSON_FLEET", root.join("lab-core/tests/fixtures/fleets/example.json"))
        .env("LAB_BUILDABLE_FLEET", crate_dir.join("tests/fixtures/buildable.nix"))
        .env("EXPECTED", &expected_file)
        .env("XDG_CACHE_HOME", cache.path())
        .current_dir(cache.path())
        .output()
        .expect("guile runs (./dev setup installs guile-3.0 and guile-json)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "guile tests failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("# of expected passes"), "{stdout}");
    assert!(!stdout.contains("# of unexpected failures"), "{stdout}");
}

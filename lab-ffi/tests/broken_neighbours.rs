//! The C API decides a selection beside broken machines as the CLI does
//! (one lab-core function, `graph::usable` / `graph::reachable`): on the
//! same fleet, where `a` fails to evaluate (real nix), the same machines are
//! usable and the same ones blocked, for the ordering calls and for
//! `lab_health` alike (issue 18: they used to answer differently);
//! lab-cli/tests/suite/broken_neighbours.rs asks the CLI the same on the same fleet.

use lab::{lab_health, lab_reboot, lab_sequence, LabStatus};
use serde_json::json;

mod common;
use common::call;

/// `a` throws; `b` stands alone; `c` needs `a`.
const FLEET: &str = r#"
let m = name: deps: {
  config = {
    networking.hostName = name;
    lab.machine = { role = "server"; rebootOrder = 0; dependencies = deps; targetHost = "${name}.lan"; };
  };
};
in { nixosConfigurations = { a = throw "a is broken on purpose"; b = m "b" [ ]; c = m "c" [ "a" ]; }; }
"#;

#[test]
fn a_broken_machine_blocks_only_the_selections_that_need_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.nix");
    std::fs::write(&path, FLEET).unwrap();
    let file = path.to_str().unwrap();
    std::env::set_var("XDG_CACHE_HOME", dir.path().join("cache"));

    let (status, sequence) = call(lab_sequence, &json!({ "file": file, "on": "b" }));
    assert_eq!(status, LabStatus::LabOk, "{sequence}");
    assert_eq!(sequence.as_array().unwrap().iter().map(|e| e["machine"].clone()).collect::<Vec<_>>(), [json!("b")]);

    let (status, error) = call(lab_sequence, &json!({ "file": file, "on": "c" }));
    assert_eq!(status, LabStatus::LabErrNotClean, "{error}");
    assert_eq!(error["kind"], "fleet");
    assert_eq!(error["blocking"][0]["machine"], "a");
    assert_eq!(error["blocking"][0]["needed"], json!({ "kind": "dependencyOf", "machine": "c" }));
    assert!(error["blocking"][0]["failure"]["message"].as_str().unwrap().contains("a is broken on purpose"));

    // A run is refused the same way, and one that does not need `a` plans.
    let state = dir.path().join("state");
    let run = |on: &str| json!({ "file": file, "on": on, "dryRun": true, "stateDir": state, "noDelay": true });
    let (status, error) = common::run(lab_reboot, &run("c"));
    assert_eq!(status, LabStatus::LabErrNotClean, "{error}");
    assert_eq!(error["blocking"][0]["machine"], "a");
    let (status, plan) = common::run(lab_reboot, &run("b"));
    assert_eq!(status, LabStatus::LabOk, "{plan}");

    // lab_health reaches without ordering: `b` has no checks (an empty
    // report), selecting `a` is not clean, as `lab health --on a` exits 1.
    let (status, reports) = call(lab_health, &json!({ "file": file, "on": "b" }));
    assert_eq!((status, reports), (LabStatus::LabOk, json!([])));
    let (status, error) = call(lab_health, &json!({ "file": file, "on": "a" }));
    assert_eq!(status, LabStatus::LabErrNotClean, "{error}");
    assert_eq!(error["blocking"][0]["needed"], json!({ "kind": "selected" }));
    let (status, error) = call(lab_health, &json!({ "file": file, "on": "zzz" }));
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
}

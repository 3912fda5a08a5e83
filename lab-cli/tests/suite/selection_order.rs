//! `--on` keeps the whole fleet's order, through the built binary: with
//! `a <- b <- c` (c needs b, b needs a) and rebootOrder a=3, b=2, c=1,
//! selecting `a,c` must still put a first and never in c's wave, although
//! b, the machine that links them, is left out.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// The chain fleet as a `--json-file`, in `dir`.
fn chain(dir: &Path) -> String {
    let path = dir.join("chain.json");
    let fleet = serde_json::json!({
        "a": { "role": "server", "rebootOrder": 3 },
        "b": { "role": "server", "rebootOrder": 2, "dependencies": ["a"] },
        "c": { "role": "server", "rebootOrder": 1, "dependencies": ["b"] },
    });
    std::fs::write(&path, fleet.to_string()).unwrap();
    path.display().to_string()
}

fn lab(args: &[&str]) -> Output {
    let out = crate::util::lab().args(args).output().unwrap();
    assert!(out.status.success(), "lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn sequence_on_a_selection_keeps_the_path_through_a_left_out_machine() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = chain(dir.path());
    for parallel in ["1", "2", "3"] {
        let out = lab(&["--json-file", &fleet, "sequence", "--on", "a,c", "--max-parallel", parallel, "--json"]);
        let rows: Vec<(String, u64, u64)> = json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["machine"].as_str().unwrap().to_string(),
                    r["position"].as_u64().unwrap(),
                    r["wave"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(rows, [("a".to_string(), 1, 1), ("c".to_string(), 2, 2)], "--max-parallel {parallel}");
    }
    let text = lab(&["--json-file", &fleet, "sequence", "--on", "a,c"]).stdout;
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("wave 1\n  1. a ") && text.contains("wave 2\n  2. c "), "{text}");
}

#[test]
fn deploy_dry_run_on_a_selection_activates_the_dependency_first() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = chain(dir.path());
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let out = lab(&[
        "--json-file",
        &fleet,
        "deploy",
        "--dry-run",
        "--on",
        "a,c",
        "--max-parallel",
        "2",
        "--json",
        "--state-dir",
        state,
    ]);
    let report = json(&out);
    let waves: Vec<Vec<&str>> = report["plans"][0]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["machines"].as_array().unwrap().iter().map(|m| m["machine"].as_str().unwrap()).collect())
        .collect();
    assert_eq!(waves, [vec!["a"], vec!["c"]]);
    // The commands too: a's new system is set before c's.
    let set_profile = |machine: &str| {
        report["actions"].as_array().unwrap().iter().position(|a| {
            a["machine"] == machine && a["argv"].as_array().is_some_and(|argv| argv.iter().any(|x| x == "--set"))
        })
    };
    let (a, c) = (set_profile("a").expect("a is activated"), set_profile("c").expect("c is activated"));
    assert!(a < c, "c is activated before a: {report:#}");

    let text = lab(&["--json-file", &fleet, "deploy", "--dry-run", "--on", "a,c", "--state-dir", state]).stdout;
    let text = String::from_utf8(text).unwrap();
    let (a, c) = (text.find("\nwave 1: ").unwrap(), text.find("\nwave 2: ").unwrap());
    assert!(text[a..c].contains("  a root@a:22") && text[c..].contains("  c root@c:22"), "{text}");
}

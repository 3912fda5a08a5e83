//! An evaluation stopped at `--eval-timeout` names the host still being
//! evaluated (the one that hangs) and the hosts read in time, with real nix
//! on a fleet where one host is slow (as fixtures/fleets/slow.nix: a minute
//! or more) and three are fast.

use std::path::Path;
use std::time::Duration;

use lab_core::eval::{evaluate, EvalError, EvalOptions, Source, Stopped};

const FLEET: &str = r#"
let
  inherit (builtins) foldl' genList;
  sum = foldl' (a: i: foldl' (b: j: b + j) a (genList (x: x) 10000)) 0 (genList (x: x) 100000);
  m = role: { config.lab.metadata = { inherit role; rebootOrder = 0; }; };
in
{ nixosConfigurations = { alpha = m "x"; beta = m "x"; gamma = m "x"; slow = m (toString sum); }; }
"#;

fn stopped(dir: &Path, jobs: usize) -> Stopped {
    let file = dir.join("fleet.nix");
    std::fs::write(&file, FLEET).unwrap();
    // Room for the fast hosts on a busy machine; far below the slow one's minute.
    let options = EvalOptions { jobs, timeout: Some(Duration::from_secs(8)), ..EvalOptions::default() };
    match evaluate(&Source::File(file), &options) {
        Err(EvalError::Timeout(stopped)) => *stopped,
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn a_timeout_names_the_host_that_hangs_and_the_healthy_ones() {
    let dir = tempfile::tempdir().unwrap();
    // One nix process per host: each host's fate is its own.
    let stopped = stopped(dir.path(), 4);
    assert_eq!(stopped.running, ["slow"]);
    assert_eq!(stopped.finished, ["alpha", "beta", "gamma"]);
    assert!(stopped.waiting.is_empty() && !stopped.unlisted, "{stopped:?}");
    let message = stopped.to_string();
    assert_eq!(
        message,
        "evaluation exceeded --eval-timeout (8s) and was stopped; still evaluating: `slow`; finished: `alpha`, `beta`, `gamma`; look for a loop or a slow import in the hosts still evaluating, or raise --eval-timeout"
    );
}

#[test]
fn in_one_process_the_hosts_behind_the_slow_one_are_not_reached() {
    let dir = tempfile::tempdir().unwrap();
    let stopped = stopped(dir.path(), 1);
    assert_eq!(stopped.running, ["slow"], "{stopped:?}");
    // nix reads one process's hosts in its own order: each fast host was
    // read or not reached, never lost.
    let mut fast: Vec<String> = stopped.finished.iter().chain(&stopped.waiting).cloned().collect();
    fast.sort();
    assert_eq!(fast, ["alpha", "beta", "gamma"], "{stopped:?}");
    assert!(!stopped.unlisted, "{stopped:?}");
}

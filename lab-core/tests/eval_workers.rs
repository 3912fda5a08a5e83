//! Fleet evaluation in worker processes, with real nix: a host whose error
//! `tryEval` cannot catch (a syntax error, a missing attribute, abort) is
//! isolated without reading the healthy hosts again; a worker past its
//! memory bound is replaced; results stream to an observer as each host is
//! read; a read can be cancelled.
//!
//! Each host traces `evaluated NAME` when nix forces it, and nix-instantiate
//! runs through a wrapper on PATH that appends nix's stderr to a log: the
//! number of those lines is how many times each host was evaluated. The
//! tests change PATH, so they run one at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab_core::eval::{evaluate, CancelToken, EvalError, EvalOptions, Observer, Source};

static SERIAL: Mutex<()> = Mutex::new(());

/// A fleet of hosts a..f: c imports a file with a syntax error, e reads a
/// missing attribute, the rest are healthy. Every host traces its evaluation.
const FLEET: &str = r#"
let
  m = name: role: builtins.trace "evaluated ${name}" {
    config = { networking.hostName = name; lab.machine = { inherit role; rebootOrder = 0; targetHost = "${name}.lan"; }; };
  };
  counted = name: value: builtins.trace "evaluated ${name}" value;
in {
  nixosConfigurations = {
    a = m "a" "database";
    b = m "b" "web";
    c = counted "c" (import ./c.nix);
    d = m "d" "web";
    e = counted "e" { config = { lab.machine = { role = { }.missing; rebootOrder = 0; }; }; };
    f = m "f" "worker";
  };
}
"#;

/// nix-instantiate wrapped so its stderr is also appended to `log`; returns
/// the PATH to use.
fn wrapped_nix(dir: &Path, log: &Path) -> std::ffi::OsString {
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("nix-instantiate"))
        .find(|p| p.is_file())
        .expect("nix-instantiate on PATH");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("nix-instantiate");
    std::fs::write(
        &script,
        format!(
            "#!/usr/bin/env bash\necho run >>'{log}.runs'\nexec '{real}' \"$@\" 2> >(tee -a '{log}' >&2)\n",
            log = log.display(),
            real = real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    std::env::join_paths(paths).unwrap()
}

/// How many times each host traced its evaluation, and how many nix ran.
fn counts(log: &Path) -> (BTreeMap<String, usize>, usize) {
    // The wrapper's tee may still be writing as nix ends.
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        if let Some(name) = line.trim().strip_prefix("trace: evaluated ") {
            *counts.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    let runs = std::fs::read_to_string(log.with_extension("log.runs")).unwrap_or_default().lines().count();
    (counts, runs)
}

struct Setup {
    _serial: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    log: PathBuf,
    path: std::ffi::OsString,
}

impl Setup {
    fn new() -> Setup {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fleet.nix"), FLEET).unwrap();
        std::fs::write(dir.path().join("c.nix"), "{ config = { lab.machine = { role = ; }; }; }\n").unwrap();
        let log = dir.path().join("nix.log");
        let path = std::env::var_os("PATH").unwrap();
        std::env::set_var("PATH", wrapped_nix(dir.path(), &log));
        Setup { _serial: serial, dir, log, path }
    }

    fn source(&self) -> Source {
        Source::File(self.dir.path().join("fleet.nix"))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        std::env::set_var("PATH", &self.path);
    }
}

#[test]
fn a_host_tryeval_cannot_catch_is_isolated_and_the_healthy_are_read_once() {
    let setup = Setup::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let observed = seen.clone();
    let observer = Observer::new(move |name, ok| observed.lock().unwrap().push((name.to_string(), ok)));
    let options = EvalOptions { jobs: 2, observer: Some(observer), ..EvalOptions::default() };
    let evaluation = evaluate(&setup.source(), &options).unwrap();

    assert_eq!(evaluation.machines.keys().collect::<Vec<_>>(), ["a", "b", "d", "f"]);
    let failures: Vec<(&str, &str)> =
        evaluation.failures.iter().map(|f| (f.machine.as_str(), f.message.as_str())).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].0, "c");
    assert!(failures[0].1.contains("syntax error"), "{failures:?}");
    let c_location = evaluation.failures[0].location.as_deref().unwrap_or_default();
    assert!(c_location.ends_with("c.nix:1"), "{c_location}");
    assert_eq!(failures[1].0, "e");
    assert!(failures[1].1.contains("attribute 'missing' missing"), "{failures:?}");

    let (counts, runs) = counts(&setup.log);
    let expected: BTreeMap<String, usize> = ["a", "b", "c", "d", "e", "f"].iter().map(|n| (n.to_string(), 1)).collect();
    assert_eq!(counts, expected, "every host evaluated exactly once");
    // Two workers, and one more for the rest of a chunk after each broken host.
    assert!(runs <= 4, "{runs} nix processes");

    // Streamed: each host once, as it was read.
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let ok = |n: &str| n != "c" && n != "e";
    let expected: Vec<(String, bool)> = ["a", "b", "c", "d", "e", "f"].iter().map(|n| (n.to_string(), ok(n))).collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_worker_past_its_memory_bound_is_replaced() {
    let setup = Setup::new();
    std::fs::write(
        setup.dir.path().join("c.nix"),
        "{ config = { lab.machine = { role = \"x\"; rebootOrder = 0; }; }; }\n",
    )
    .unwrap();
    // Healthy hosts that each take a moment (so a worker is still reading
    // the next host when lab sees it past the bound).
    let slow = FLEET.replace("{ }.missing", "\"y\"").replace(
        "m = name: role: builtins.trace",
        "m = name: role0: let role = builtins.seq (builtins.foldl' (x: y: x + y) 0 (builtins.genList (x: x) 400000)) role0; in builtins.trace",
    );
    std::fs::write(setup.dir.path().join("fleet.nix"), slow).unwrap();
    let whole = evaluate(&setup.source(), &EvalOptions { jobs: 1, ..EvalOptions::default() }).unwrap();
    let (_, runs) = counts(&setup.log);
    assert_eq!(runs, 1, "one worker under the default bound");
    assert_eq!(whole.machines.len(), 6);
    // Any nix is past one byte: replaced after each host, and the result is
    // the same.
    std::fs::remove_file(&setup.log).unwrap();
    std::fs::remove_file(setup.log.with_extension("log.runs")).unwrap();
    let options = EvalOptions { jobs: 1, worker_memory: Some(1), ..EvalOptions::default() };
    let bounded = evaluate(&setup.source(), &options).unwrap();
    assert_eq!(bounded, whole);
    let (counts, runs) = counts(&setup.log);
    // Workers replaced (at most one per host, plus the settings read alone
    // once chunk 0's first worker, which carries them, was replaced); how
    // many depends on how far nix got before lab saw it past the bound.
    assert!((3..=7).contains(&runs), "{runs} nix processes: workers past the bound were replaced");
    // Every host was read (a replaced worker may have begun, or read, hosts
    // whose traces the wrapper's tee, killed with it, did not pass on).
    assert_eq!(counts.len(), 6, "{counts:?}");
}

#[test]
fn a_read_can_be_cancelled() {
    let setup = Setup::new();
    // A host that takes a minute or more (as fixtures/fleets/slow.nix).
    std::fs::write(
        setup.dir.path().join("fleet.nix"),
        "let inherit (builtins) foldl' genList; sum = foldl' (a: i: foldl' (b: j: b + j) a (genList (x: x) 10000)) 0 (genList (x: x) 100000); in\n\
         { nixosConfigurations.slow.config.lab.machine = { role = toString sum; rebootOrder = 0; }; }\n",
    )
    .unwrap();
    let cancel = CancelToken::new();
    let options = EvalOptions { jobs: 1, cancel: Some(cancel.clone()), ..EvalOptions::default() };
    let started = Instant::now();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        cancel.cancel();
    });
    let result = evaluate(&setup.source(), &options);
    canceller.join().unwrap();
    assert!(matches!(result, Err(EvalError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "cancelled at once, not after the minute");
}

//! `lab plan deploy --diff`'s refusals, and the command lines
//! lab-orchestrator.nix gives `lab serve` and `lab status --prometheus`
//! (serve.*, textfile.*) read by the real `lab`: a flag the module passes
//! and lab does not know would leave the units failing on every host.
//! (The diff itself: lab-core/tests/diff.rs, e2e/tests/diff.rs.)

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/example.json").display().to_string()
}

fn run(args: &[&str]) -> Output {
    crate::util::lab().args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn diff_is_for_deploys_from_a_buildable_source() {
    let fleet = example();
    let out = run(&["--json-file", &fleet, "plan", "reboot", "--diff"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("--diff shows what a deploy changes: use it with `lab plan deploy`"), "{stderr}");
    // The JSON contract has no systems to build: said, and nothing reached.
    let out = run(&["--json-file", &fleet, "plan", "deploy", "--diff"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("is the JSON contract") && stderr.contains("--flake, --file, --hosts-dir"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// ExecStart as argv: the module quotes with lib.escapeShellArgs, and its
/// words here hold no space or quote of their own.
fn words(exec: &str) -> Vec<String> {
    exec.split(' ').map(|w| w.trim_matches('\'').to_string()).collect()
}

/// Runs the unit's lab command line with `lab` under test, the flake
/// pointed at a directory that does not exist (so lab stops right after
/// reading its arguments) and the values in `replace` swapped; bounded.
fn run_unit(exec: &str, replace: &[(&str, &str)]) -> String {
    let mut argv = words(exec);
    assert!(argv[0].ends_with("-lab/bin/lab"), "{exec}");
    for word in argv.iter_mut() {
        if let Some((_, to)) = replace.iter().find(|(from, _)| word == from) {
            *word = to.to_string();
        }
    }
    let mut child = crate::util::lab()
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_modules_serve_and_textfile_command_lines_are_lab_s() {
    let Some(lib) = lab_testkit::nixpkgs_lib() else { return };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a-token-of-the-test\n").unwrap();
    let settings = json!({
        "flake": "github:me/homelab",
        "sshKeyFile": "/var/lib/lab-orchestrator/id",
        "serve": {"enable": true, "address": "127.0.0.1", "port": 9184, "interval": 7, "tokenFile": "/run/secrets/t"},
        "textfile": {"enable": true},
    });
    let result = lab_testkit::orchestrator_eval::eval(&lib, &settings, &json!({}));
    let missing = dir.path().join("no-such-flake").display().to_string();
    let serve = result["serveUnit"]["serviceConfig"]["ExecStart"].as_str().unwrap();
    // Port 0: any free port, so parallel tests do not collide.
    let stderr =
        run_unit(serve, &[("github:me/homelab", &missing), ("9184", "0"), ("%d/token", token.to_str().unwrap())]);
    assert!(!stderr.contains("Usage:") && !stderr.contains("unexpected argument"), "{serve}: {stderr}");
    assert!(stderr.contains("no-such-flake"), "lab got past its arguments to the flake: {stderr}");
    let textfile = result["textfileUnit"]["serviceConfig"]["ExecStart"].as_str().unwrap();
    let prom = dir.path().join("lab.prom").display().to_string();
    let stderr = run_unit(
        textfile,
        &[("github:me/homelab", &missing), ("/var/lib/prometheus-node-exporter-text-files/lab.prom", &prom)],
    );
    assert!(!stderr.contains("Usage:") && !stderr.contains("unexpected argument"), "{textfile}: {stderr}");
    assert!(stderr.contains("no-such-flake"), "lab got past its arguments to the flake: {stderr}");
}

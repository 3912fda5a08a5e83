//! A host key that changed stops the run for that machine (issue 10,
//! "Security"): before a deploy, and across a reboot. lab never accepts the
//! new key: known_hosts stays as it was, the machine is not touched, its
//! dependents are not either, and the error says what to do.
//! Needs root, nix and sshd; `cargo build -p lab-cli -p lab-e2e` first.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lab_e2e::run::{activations, events, lab_command, started, text};
use lab_e2e::{output_within, FleetSpec, HostSpec, SystemSpec, TestFleet};
use serde_json::Value;

/// Bound on any one lab run.
const RUN: Duration = Duration::from_secs(60);

fn lab(fleet: &TestFleet, state: &Path, args: &[&str]) -> Output {
    output_within(lab_command(fleet, state, args).arg("--json"), RUN).unwrap()
}

fn failures<'a>(events: &'a [Value], machine: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == "step-failed" && e["machine"] == machine).collect()
}

/// The error names the machine, says it is the host key and how to fix it.
fn assert_host_key_error(failure: &Value, machine: &str) {
    let error = failure["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(&format!("{machine}: ")), "{error}");
    assert!(error.contains("host key verification failed"), "{error}");
    assert!(error.contains("ssh-keygen -R"), "{error}");
}

#[test]
fn a_changed_host_key_stops_the_deploy_of_that_machine_and_its_dependents_only() {
    let spec = FleetSpec::new(vec![HostSpec::new("a"), HostSpec::new("b").depends_on(&["a"]), HostSpec::new("c")]);
    let mut fleet = TestFleet::start(spec).unwrap();
    let state = tempfile::tempdir().unwrap();
    let all = [("a", SystemSpec::healthy()), ("b", SystemSpec::healthy()), ("c", SystemSpec::healthy())];
    let gen2 = fleet.write_generation(2, &all).unwrap();
    let known = std::fs::read(fleet.known_hosts()).unwrap();
    let gen1 = |n: &str| fleet.host(n).current_system().expect("the host runs a system");
    let (a1, b1) = (gen1("a"), gen1("b"));
    fleet.host("a").replace_host_key().unwrap();

    let out = lab(&fleet, state.path(), &["deploy", "--keep-going"]);
    let (log, ev) = (text(&out), events(&out));
    assert_eq!(out.status.code(), Some(1), "{log}");
    let failed = failures(&ev, "a");
    assert_eq!(failed.len(), 1, "{log}");
    assert_host_key_error(failed[0], "a");
    // Nothing ran on a; b, which depends on a, was not activated (its
    // closure may have been copied ahead: that changes nothing it runs);
    // c, unrelated, was deployed.
    assert_eq!(activations(fleet.host("a"), "2"), 0);
    assert_eq!(fleet.host("a").current_system(), Some(a1));
    assert_eq!(started(&ev, "b", "activate"), None, "b depends on a and was activated: {log}");
    assert_eq!(activations(fleet.host("b"), "2"), 0);
    assert_eq!(fleet.host("b").current_system(), Some(b1));
    assert_eq!(activations(fleet.host("c"), "2"), 1);
    assert_eq!(fleet.host("c").current_system(), Some(gen2["c"].clone()));
    // Each step ends once in the report: b's build and copy, done ahead of
    // its turn, are not called skipped afterwards.
    let mut ends = std::collections::BTreeMap::<&str, usize>::new();
    for e in &ev {
        if ["step-finished", "step-failed", "skipped"].contains(&e["event"].as_str().unwrap_or_default()) {
            *ends.entry(e["step"].as_str().unwrap()).or_default() += 1;
        }
    }
    assert!(ends.values().all(|&n| n == 1), "{ends:?}");
    assert_eq!(ends.len(), 12, "{ends:?}");
    // The new key was not learnt.
    assert_eq!(std::fs::read(fleet.known_hosts()).unwrap(), known);
    fleet.teardown().unwrap();
}

/// lab keeps asking until rebootTimeout (an initrd's own sshd answers with
/// another key until the system is up), never accepts the key, and fails
/// the machine with the host key as the reason.
#[test]
fn a_host_key_that_changes_across_a_reboot_stops_the_run_at_its_reboot_timeout() {
    let mut hosts = vec![HostSpec::new("a").boot_delay(Duration::from_secs(2)), HostSpec::new("b").depends_on(&["a"])];
    hosts[0].metadata.orchestration.reboot_timeout = 8;
    let fleet = TestFleet::start(FleetSpec::new(hosts)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let known = std::fs::read(fleet.known_hosts()).unwrap();
    let out = std::thread::scope(|s| {
        let run = s.spawn(|| lab(&fleet, state.path(), &["reboot"]));
        // While a is down, it is "reinstalled": it comes back with a new key.
        let a = fleet.host("a");
        assert!(a.wait_for(RUN, |h| !h.events("down").is_empty()), "a never went down");
        a.replace_host_key().unwrap();
        run.join().unwrap()
    });
    let (log, ev) = (text(&out), events(&out));
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert_eq!(fleet.host("a").events("reboot-start").len(), 1, "a rebooted once: {log}");
    let failed = failures(&ev, "a");
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(failed[0]["action"], "wait-for-boot", "{log}");
    assert_host_key_error(failed[0], "a");
    assert!(failed[0]["error"].as_str().unwrap().contains("came back from the reboot"), "{log}");
    // Waited out: the failure came no sooner than rebootTimeout after a went down.
    let down = fleet.host("a").events("reboot-start")[0].at_us;
    assert!(lab_e2e::hostlog::now_us() - down >= 8_000_000, "gave up before rebootTimeout");
    assert!(fleet.host("b").events("reboot-start").is_empty(), "b was rebooted after a failed");
    assert_eq!(started(&ev, "b", "reboot"), None, "{log}");
    assert_eq!(std::fs::read(fleet.known_hosts()).unwrap(), known);
    fleet.teardown().unwrap();
}

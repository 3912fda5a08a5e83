//! lab status against namespaced test hosts: an up-to-date host, an
//! outdated one that needs a reboot, an unreachable one and an unhealthy
//! one; the exit code tells a monitoring probe whether all is well.
//! Needs root, nix and sshd, and `cargo build -p lab-cli -p lab-e2e` first.

use std::process::Output;
use std::time::Duration;

use lab_e2e::{output_within, FleetSpec, HostSpec, SystemSpec, TestFleet};

const RUN: Duration = Duration::from_secs(120);

fn lab(fleet: &TestFleet, state: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = lab_e2e::run::lab_command(fleet, state, args);
    // A dead host must not hold the probe for long.
    cmd.args(["--ssh-option", "ConnectTimeout=3"]);
    output_within(&mut cmd, RUN).unwrap()
}

#[test]
fn status_tells_outdated_reboot_unreachable_and_unhealthy_hosts_apart() {
    let spec = FleetSpec::new(vec![
        HostSpec::new("fine"),
        HostSpec::new("stale"),
        HostSpec::new("gone"),
        HostSpec::new("sick"),
    ]);
    let mut fleet = TestFleet::start(spec).unwrap();
    let state = tempfile::tempdir().unwrap();

    // stale: a new generation with a new kernel, deployed for the next boot.
    fleet.write_generation(2, &[("stale", SystemSpec::healthy().with_kernel("linux-6.9"))]).unwrap();
    let deployed = lab(&fleet, state.path(), &["deploy", "--on", "stale", "--goal", "boot"]);
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
    fleet.host("sick").set_health("503").unwrap();
    fleet.host("gone").set_link(false).unwrap();

    let out = lab(&fleet, state.path(), &["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "not all is well: {}", String::from_utf8_lossy(&out.stderr));
    let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |name: &str| statuses.as_array().unwrap().iter().find(|s| s["machine"] == name).unwrap().clone();

    let fine = by("fine");
    assert_eq!((fine["reachable"].as_bool(), fine["healthy"].as_bool()), (Some(true), Some(true)));
    assert_eq!(fine["generation"], "up-to-date");
    assert_eq!(fine["needsReboot"], serde_json::Value::Null);
    assert!(fine["uptimeSeconds"].as_u64().is_some());

    let stale = by("stale");
    assert_eq!(stale["generation"], "outdated", "it still runs generation 1: {stale}");
    assert!(stale["needsReboot"].as_str().unwrap().contains("kernel"), "{stale}");
    assert_eq!(stale["lastRun"]["state"], "finished", "the deploy is its last run: {stale}");

    let gone = by("gone");
    assert_eq!(gone["reachable"], false);
    assert_eq!(gone["generation"], "unknown");

    let sick = by("sick");
    assert_eq!(sick["healthy"], false);
    assert!(sick["failing"][0].as_str().unwrap().contains("503"), "{sick}");

    // The healthy, up-to-date host alone: exit 0. The table names the problems.
    let ok = lab(&fleet, state.path(), &["status", "--on", "fine"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let table = lab(&fleet, state.path(), &["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("OUTDATED") && table.contains("needed") && table.contains("NO (") && table.contains("FAILING"),
        "{table}"
    );
    fleet.host("gone").set_link(true).unwrap();
    fleet.teardown().unwrap();
}

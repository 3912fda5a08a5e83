//! lab's activation protocol against hosts that boot a real systemd: real
//! transient units, real timers, a model of switch-to-configuration as
//! unkind as the real one. Every case asserts from the host's own state:
//! its links, its boot default, its lab-* timers and its switch log.

use std::path::PathBuf;
use std::time::Duration;

use lab_e2e::run::text;
use lab_e2e::systemd_fleet::SystemdFleet;
use lab_e2e::{HostSpec, SystemSpec};

/// Every wait here stops a hang; none measures.
const LIMIT: Duration = Duration::from_secs(180);

fn host(name: &str, confirm_timeout: i64) -> HostSpec {
    let mut spec = HostSpec::new(name);
    spec.metadata.orchestration.confirm_timeout = confirm_timeout;
    spec
}

/// The host's switch log: (time, event, action, system) per line.
fn switches(fleet: &SystemdFleet, host: &str) -> Vec<(f64, String, String, PathBuf)> {
    let log = fleet.run(host, &["cat", "/var/log/lab-switch.log"]).unwrap();
    log.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[1].to_string(), f[2].to_string(), PathBuf::from(f[3]))
        })
        .collect()
}

fn deploy(fleet: &SystemdFleet, state: &std::path::Path) -> std::process::Output {
    let mut cmd = fleet.lab(state, &["deploy", "--json"]);
    lab_e2e::output_within(&mut cmd, LIMIT).unwrap()
}

#[test]
fn a_healthy_deploy_is_confirmed_and_nothing_lab_left_changes_the_machine_after() {
    let mut fleet = SystemdFleet::start(vec![host("act1", 4)]).unwrap();
    let gen1 = fleet.links("act1").unwrap();
    assert_eq!(gen1.current, gen1.profile);
    assert_eq!(gen1.current, gen1.booted);
    let gen2 = fleet.write_generation(2, &[("act1", SystemSpec::healthy())]).unwrap()["act1"].clone();
    let state = tempfile::tempdir().unwrap();
    let out = deploy(&fleet, state.path());
    assert!(out.status.success(), "{}", text(&out));
    let links = fleet.links("act1").unwrap();
    assert_eq!(links.current, gen2, "{links:?}");
    assert_eq!(links.profile, gen2, "{links:?}");
    assert_eq!(links.boot_default, gen2, "{links:?}");
    assert_eq!(links.booted, gen1.booted, "no reboot happened");
    let dbg = fleet.run("act1", &["sh", "-c", "'systemctl status --all \"lab-*\" --no-pager; journalctl -b --no-pager | grep -i -E \"lab-rollback|lab-confirm\" | tail -30; true'"]).unwrap_or_default();
    assert_eq!(fleet.lab_timers("act1").unwrap(), Vec::<String>::new(), "no watchdog is left: {dbg}");
    // Past every deadline lab set (confirmTimeout 4 s), the machine stays.
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(fleet.links("act1").unwrap().current, gen2);
    let log = switches(&fleet, "act1");
    assert_eq!(log.iter().filter(|s| s.1 == "start").count(), 2, "the install and the deploy, no rollback: {log:?}");
    fleet.teardown();
}

#[test]
fn a_generation_that_closes_port_22_is_rolled_back_by_the_machine_within_confirm_timeout() {
    let mut fleet = SystemdFleet::start(vec![host("act2", 4)]).unwrap();
    let gen1 = fleet.links("act2").unwrap();
    let gen2 = fleet.write_generation(2, &[("act2", SystemSpec::breaks_sshd())]).unwrap()["act2"].clone();
    let state = tempfile::tempdir().unwrap();
    let out = deploy(&fleet, state.path());
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("rolled back") || log.contains("rolled-back"), "{log}");
    fleet.wait_for_ssh("act2", LIMIT).unwrap();
    let links = fleet.links("act2").unwrap();
    assert_eq!(links.current, gen1.current, "{links:?}");
    assert_eq!(links.profile, gen1.profile, "{links:?}");
    assert_eq!(links.boot_default, gen1.current, "the boot default is restored too: {links:?}");
    let timers =
        fleet.run("act2", &["systemctl", "list-units", "--all", "--type=timer", "--no-legend", "'lab-*'"]).unwrap();
    assert_eq!(fleet.lab_timers("act2").unwrap(), Vec::<String>::new(), "no watchdog is left: {timers}\n{log}");
    // The rollback began within confirmTimeout (4 s) plus about a second of
    // the breaking switch's end: the watchdog's timer fires on time.
    let switches = switches(&fleet, "act2");
    let broke = switches.iter().find(|s| s.1 == "end-0" && s.3 == gen2).expect("the switch to gen2 ended");
    let back = switches.iter().find(|s| s.1 == "start" && s.0 > broke.0 && s.3 == gen1.current).expect("a rollback");
    let late = back.0 - broke.0;
    assert!(late <= 4.0 + 2.0, "the rollback began {late:.1} s after the switch ended: {switches:?}");
    fleet.teardown();
}

//! lab's activation protocol against hosts that boot a real systemd: real
//! transient units, real timers, a model of switch-to-configuration as
//! unkind as the real one. Every case asserts from the host's own state:
//! its links, its boot default, its lab-* timers and its switch log.

use std::path::PathBuf;
use std::time::Duration;

use lab_e2e::run::text;
use lab_e2e::switch_log::switches;
use lab_e2e::systemd_fleet::SystemdFleet;
use lab_e2e::{HostSpec, SystemSpec};

/// Every wait here stops a hang; none measures.
const LIMIT: Duration = Duration::from_secs(180);

fn host(name: &str, confirm_timeout: i64) -> HostSpec {
    let mut spec = HostSpec::new(name);
    spec.metadata.orchestration.confirm_timeout = confirm_timeout;
    spec
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
    let mut cmd = fleet.lab(state.path(), &["deploy", "--json"]);
    let out = lab_e2e::output_within(&mut cmd, LIMIT).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let links = fleet.links("act1").unwrap();
    assert_eq!(links.current, gen2, "{links:?}");
    assert_eq!(links.profile, gen2, "{links:?}");
    assert_eq!(links.boot_default, gen2, "{links:?}");
    assert_eq!(links.booted, gen1.booted, "no reboot happened");
    // lab ran the system's own tools, as a NixOS unit must (its PATH has
    // no /usr/bin), never bare names.
    let records = lab_core::store::journal::read(&journal_of(&out)).unwrap();
    let probe = records
        .iter()
        .find_map(|r| match &r.entry {
            lab_core::store::journal::Entry::Step { step, detail, .. } if step == "deploy/act1/activate" => {
                detail.activated().map(|a| serde_json::to_value(&a.tools).unwrap())
            }
            _ => None,
        })
        .expect("the activation's probe is journaled");
    for tool in ["sh", "nixEnv", "systemdRun", "systemctl", "flock"] {
        assert!(probe[tool].as_str().unwrap().starts_with("/run/current-system/sw/bin/"), "{tool}: {probe}");
    }
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

/// Kills every ssh session on the host but the one running this script
/// (and its ancestors): lab's connection drops as on a network stall. Prints
/// how many it killed.
const DROP_OTHER_SESSIONS: &str = "keep=\" \"; p=$$; while [ \"$p\" -gt 1 ]; do keep=\"$keep$p \"; p=$(cut -d\" \" -f4 /proc/$p/stat); done; n=0; for s in $(pgrep -f \"sshd: root@notty\"); do case \"$keep\" in *\" $s \"*) ;; *) kill -9 \"$s\" && n=$((n+1)) ;; esac; done; echo $n";

/// When lab's journal says `step` finished, in seconds since the epoch.
fn finished_at(journal: &std::path::Path, step: &str) -> f64 {
    use lab_core::store::journal::{self, Entry, StepState};
    let records = journal::read(journal).unwrap();
    let finished = records
        .iter()
        .find(|r| matches!(&r.entry, Entry::Step { step: s, state: StepState::Finished, .. } if s == step));
    finished.unwrap_or_else(|| panic!("{step} never finished: {records:?}")).time_ms as f64 / 1000.0
}

/// The journal a `lab … --json` run wrote, from its run-started event.
fn journal_of(out: &std::process::Output) -> PathBuf {
    let text = String::from_utf8_lossy(&out.stdout);
    let started = text.lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["event"] == "run-started").then(|| PathBuf::from(v["journal"].as_str().unwrap()))
    });
    started.expect("a run-started event")
}

#[test]
fn a_connection_dropped_mid_switch_is_followed_to_the_switch_end_and_nothing_rolls_back_after() {
    let mut fleet = SystemdFleet::start(vec![host("act3", 3)]).unwrap();
    let gen1 = fleet.links("act3").unwrap();
    // The switch runs 8 s, longer than confirmTimeout (3 s).
    let slow = SystemSpec { activation_delay: Duration::from_secs(8), ..SystemSpec::healthy() };
    let gen2 = fleet.write_generation(2, &[("act3", slow)]).unwrap()["act3"].clone();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = fleet.lab(state.path(), &["deploy", "--json"]);
    let lab = std::thread::spawn(move || lab_e2e::output_within(&mut cmd, LIMIT).unwrap());
    // Once the switch to gen2 runs, drop lab's connection under it.
    let until = std::time::Instant::now() + LIMIT;
    while !switches(&fleet, "act3").iter().any(|s| s.1 == "start" && s.3 == gen2) {
        assert!(std::time::Instant::now() < until, "the switch to gen2 never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let dropped = fleet.run("act3", &["sh", "-c", &format!("'{DROP_OTHER_SESSIONS}'")]).unwrap();
    let dropped_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert_ne!(dropped.trim(), "0", "lab's session was found and killed");
    let out = lab.join().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");

    let log_switches = switches(&fleet, "act3");
    let ended = log_switches.iter().find(|s| s.1.starts_with("end-") && s.3 == gen2).expect("the switch ended");
    assert_eq!(ended.1, "end-0", "the switch ran to its end, its output not closed under it: {log_switches:?}");
    assert!(ended.0 > dropped_at, "the connection dropped mid-switch: {log_switches:?}");
    let confirmed = finished_at(&journal_of(&out), "deploy/act3/activate");
    assert!(confirmed >= ended.0, "lab confirmed at {confirmed:.2}, before the switch ended at {:.2}", ended.0);
    assert_eq!(fleet.lab_timers("act3").unwrap(), Vec::<String>::new(), "no watchdog is left");
    // Past confirmTimeout + 3 s nothing rolls it back.
    std::thread::sleep(Duration::from_secs(3 + 3));
    let links = fleet.links("act3").unwrap();
    assert_eq!((links.current, links.profile, links.boot_default), (gen2.clone(), gen2.clone(), gen2), "{log}");
    let after = switches(&fleet, "act3");
    assert!(!after.iter().any(|s| s.3 == gen1.current && s.0 > ended.0), "no switch back to gen1: {after:?}");
    assert_eq!(fleet.lab_timers("act3").unwrap(), Vec::<String>::new());
    fleet.teardown();
}

/// Case 2's exit statuses: 4 ("some units failed") and 101 (the real
/// switch-to-configuration panics when its output closes, nixpkgs
/// #462179), each on its own host of one fleet, in one run.
#[test]
fn a_switch_that_exits_4_or_101_is_reported_with_its_status_and_rolled_back() {
    let mut fleet = SystemdFleet::start(vec![host("act4", 3), host("act5", 3)]).unwrap();
    let before: Vec<_> = ["act4", "act5"].iter().map(|n| fleet.links(n).unwrap()).collect();
    let exits = |code| SystemSpec { activation_exit: code, ..SystemSpec::healthy() };
    let gen2 = fleet.write_generation(2, &[("act4", exits(4)), ("act5", exits(101))]).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = fleet.lab(state.path(), &["deploy", "--json", "--keep-going", "--max-parallel", "2"]);
    let out = lab_e2e::output_within(&mut cmd, LIMIT).unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("switch-to-configuration switch exited with status 4"), "{log}");
    assert!(log.contains("switch-to-configuration switch exited with status 101"), "{log}");
    assert!(log.contains("rolled-back"), "{log}");
    for ((n, code), gen1) in [("act4", 4), ("act5", 101)].into_iter().zip(&before) {
        let links = fleet.links(n).unwrap();
        assert_eq!(links.current, gen1.current, "{n}: {links:?}");
        assert_eq!(links.profile, gen1.profile, "{n}: {links:?}");
        assert_eq!(links.boot_default, gen1.current, "{n}: {links:?}");
        let log_switches = switches(&fleet, n);
        let end = format!("end-{code}");
        assert!(log_switches.iter().any(|s| s.1 == end && s.3 == gen2[n]), "{n}: {log_switches:?}");
        assert_eq!(fleet.lab_timers(n).unwrap(), Vec::<String>::new(), "{n}: no watchdog is left");
    }
    // Past every deadline the machines stay on gen1.
    std::thread::sleep(Duration::from_secs(3 + 3));
    for (n, gen1) in ["act4", "act5"].into_iter().zip(&before) {
        assert_eq!(fleet.links(n).unwrap().current, gen1.current, "{n}");
        assert_eq!(fleet.lab_timers(n).unwrap(), Vec::<String>::new(), "{n}: no watchdog is left");
    }
    fleet.teardown();
}

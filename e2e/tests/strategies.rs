//! Deploy strategies and reboot faults through the real `lab` binary
//! against namespaced test hosts, asserted from the hosts' own logs and
//! links; and the harness's own promise that a failing test leaves nothing
//! behind. (Recreate and the fleet lock run on the real-systemd hosts:
//! `systemd_orchestrate.rs`.) Needs root, nix and sshd, and `cargo build
//! -p lab-cli -p lab-e2e` first.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use lab_core::metadata::DeployStrategy;
use lab_e2e::run::{lab_command, text};
use lab_e2e::{output_within, FleetSpec, HostMode, HostSpec, LogEntry, SystemSpec, TestFleet};

/// Bound on any one lab run in these tests.
const RUN: Duration = Duration::from_secs(120);

fn lab(fleet: &TestFleet, state: &Path, args: &[&str]) -> Output {
    output_within(&mut lab_command(fleet, state, args), RUN).unwrap()
}

/// A host that gives up on health quickly.
fn quick(name: &str) -> HostSpec {
    let mut h = HostSpec::new(name);
    h.metadata.orchestration.healthy_deadline = 4;
    h
}

#[test]
fn blue_green_wave_is_all_or_nothing_on_real_hosts() {
    let names = ["g1", "g2", "g3"];
    let hosts = names.iter().map(|n| quick(n).strategy(DeployStrategy::BlueGreen)).collect();
    let mut fleet = TestFleet::start(FleetSpec::new(hosts)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let gen1: Vec<PathBuf> = names.iter().map(|n| fleet.host(n).current_system().unwrap()).collect();
    let healthy = SystemSpec::healthy().with_kernel("linux-6.6.2");
    let gen2 = fleet
        .write_generation(2, &[("g1", healthy.clone()), ("g2", healthy), ("g3", SystemSpec::unhealthy())])
        .unwrap();
    // A notification hook: each event it is told of, in a file of its own.
    let told = tempfile::tempdir().unwrap();
    let hook = told.path().join("hook");
    let script = format!("#!/bin/sh\nf=$(mktemp -p {})\ncat > \"$f.json\"\n", told.path().display());
    std::fs::write(&hook, script).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = lab(&fleet, state.path(), &["deploy", "--max-parallel", "3", "--notify-command", hook.to_str().unwrap()]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "a rolled-back wave exits 1:\n{log}");
    let mut events: Vec<(String, String)> = std::fs::read_dir(told.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(p).unwrap()).unwrap())
        .map(|e| (e["event"].as_str().unwrap().to_string(), e["machine"].as_str().unwrap_or("").to_string()))
        .collect();
    events.sort();
    let expected = [("rollback", "g1"), ("rollback", "g2"), ("rollback", "g3"), ("run-failed", "")];
    assert_eq!(events, expected.map(|(e, m)| (e.to_string(), m.to_string())), "the hook was told: {log}");
    for (n, first) in names.iter().zip(&gen1) {
        let host = fleet.host(n);
        let new = gen2[*n].display().to_string();
        // It was live on the new generation, with `test` only…
        let tried: Vec<LogEntry> = host
            .events("switch-to-configuration")
            .into_iter()
            .filter(|e| e.field("system") == Some(new.as_str()))
            .collect();
        assert_eq!(tried.iter().map(|e| e.field("goal").unwrap()).collect::<Vec<_>>(), ["test"], "{n}: {log}");
        // …and nothing of it stayed: running, profile and boot default are generation 1.
        assert_eq!(&host.current_system().unwrap(), first, "{n} runs generation 1 again: {log}\n{:#?}", host.log());
        assert_eq!(&host.profile_system().unwrap(), first, "{n}: the profile never moved");
        assert_eq!(&host.booted_system().unwrap(), first);
        let defaults: Vec<LogEntry> =
            host.events("boot-default").into_iter().filter(|e| e.field("system") == Some(new.as_str())).collect();
        assert!(defaults.is_empty(), "{n}: generation 2 became the boot default: {defaults:?}");
        let generations: Vec<PathBuf> = std::fs::read_dir(host.dir().join("profiles"))
            .unwrap()
            .filter_map(|e| std::fs::canonicalize(e.unwrap().path()).ok())
            .collect();
        assert!(!generations.contains(&gen2[*n]), "{n}: generation 2 entered the system profile: {generations:?}");
    }
    assert!(log.contains("ROLLED BACK"), "{log}");
    fleet.teardown().unwrap();
}

#[test]
fn a_host_that_never_comes_back_stops_the_run_at_its_reboot_timeout() {
    let mut gone = HostSpec::new("n1").mode(HostMode::NeverReturns);
    gone.metadata.orchestration.reboot_timeout = 4;
    let hosts = vec![gone, HostSpec::new("n2").depends_on(&["n1"]), HostSpec::new("n3").depends_on(&["n2"])];
    let fleet = TestFleet::start(FleetSpec::new(hosts)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = lab(&fleet, state.path(), &["reboot"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("rebootTimeout"), "the failure names the deadline: {log}");
    let n1 = fleet.host("n1");
    assert!(!n1.events("never-returns").is_empty(), "n1 went down for good: {log}");
    // The run ended at n1's deadline: not before it, and not long after.
    let down = n1.events("reboot-start")[0].at_us;
    let ended = lab_e2e::hostlog::now_us();
    let after = Duration::from_micros((ended - down) as u64);
    assert!(after >= Duration::from_secs(4), "lab gave up {after:?} after n1 went down (rebootTimeout 4 s)");
    // Well short of the run's own bound: lab stopped at the deadline instead
    // of waiting on (a hang bound with room for a busy machine).
    assert!(after < Duration::from_secs(4 + 40), "lab ran on {after:?} after n1 went down");
    assert!(started.elapsed() < RUN);
    for n in ["n2", "n3"] {
        let host = fleet.host(n);
        assert!(host.events("reboot-requested").is_empty(), "{n} depends on n1 and was touched: {log}");
        assert_eq!(host.events("boot").len(), 1, "{n} never rebooted");
    }
    fleet.teardown().unwrap();
}

#[test]
fn hosts_are_torn_down_when_a_test_fails() {
    let mut seen = None;
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let fleet = TestFleet::start(FleetSpec::new(vec![HostSpec::new("t1"), HostSpec::new("t2")])).unwrap();
        let hosts: Vec<(String, u8)> = fleet.hosts().iter().map(|h| (h.netns().to_string(), h.slot())).collect();
        assert!(fleet.hosts().iter().all(|h| h.ssh_up()));
        seen = Some((fleet.dir().to_path_buf(), hosts));
        panic!("a deliberate test failure with the fleet up");
    }));
    assert!(failed.is_err());
    let (dir, hosts) = seen.unwrap();
    lab_e2e::fleet::leftovers(&dir, &hosts).unwrap();
}

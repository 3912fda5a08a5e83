//! lab deploy / reboot / resume through the real binary against namespaced
//! test hosts: order and gating are read from the hosts' own logs. (Deploy
//! order and a failure stopping only its dependents run on the real-systemd
//! hosts: `systemd_orchestrate.rs`.)
//! Needs root, nix and sshd, and `cargo build -p lab-cli -p lab-e2e` first.

use std::process::Output;
use std::time::{Duration, Instant};

use lab_e2e::run::{journal_records, lab_command, text};
use lab_e2e::{output_within, FleetSpec, HostSpec, SystemSpec, TestFleet};

/// Bound on any one lab run in these tests.
const RUN: Duration = Duration::from_secs(180);

fn lab(fleet: &TestFleet, state: &std::path::Path, args: &[&str]) -> Output {
    output_within(&mut lab_command(fleet, state, args), RUN).unwrap()
}

/// Hosts in the order of their first `event` in the merged log.
fn order_of(fleet: &TestFleet, event: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in fleet.merged_log() {
        if e.event == event && !out.contains(&e.host) {
            out.push(e.host.clone());
        }
    }
    out
}

#[test]
fn a_generation_that_breaks_sshd_is_rolled_back_by_the_host_within_confirm_timeout() {
    let mut host = HostSpec::new("edge");
    host.metadata.orchestration.confirm_timeout = 5;
    let mut fleet = TestFleet::start(FleetSpec::new(vec![host])).unwrap();
    let state = tempfile::tempdir().unwrap();
    let gen2 = fleet.write_generation(2, &[("edge", SystemSpec::breaks_sshd())]).unwrap();
    let out = lab(&fleet, state.path(), &["deploy"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let edge = fleet.host("edge");
    assert!(edge.wait_for(Duration::from_secs(30), |h| h.ssh_up()), "sshd is back");
    assert_ne!(edge.current_system().unwrap(), gen2["edge"]);
    let fired = edge.events("timer-fired");
    let switched = edge.events("switch-to-configuration");
    assert!(!fired.is_empty(), "the host's watchdog fired: {log}");
    let after = (fired[0].at_us - switched[0].at_us) / 1000;
    assert!(after <= 5_000 + 2_000, "watchdog fired {after} ms after the switch (confirmTimeout 5 s)");
    fleet.teardown().unwrap();
}

/// A chain of 6 hosts rebooted one after the other: lab's makespan against
/// the lower bound (per host: rebootDelay + time down + time to healthy,
/// all taken from the hosts' own logs), printed for the report, with where
/// each host's share of the difference goes. The bound is an oracle's: it
/// has no room for the one fresh ssh session any tool needs to see a
/// host's new boot id (about 0.2 s a host here, most of it the key
/// exchange), so the figure is given twice: against that bound, and with
/// that session, measured on the same hosts after the run, added to it;
/// the second is what lab itself adds.
#[test]
fn six_host_rolling_reboot_goes_in_order_and_reports_its_makespan() {
    let names = ["r1", "r2", "r3", "r4", "r5", "r6"];
    let hosts = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut h = HostSpec::new(n).boot_delay(Duration::from_secs(2));
            h.metadata.orchestration.reboot_delay = 1;
            h.metadata.orchestration.min_healthy_time = 1;
            if i > 0 {
                h = h.depends_on(&[names[i - 1]]);
            }
            h
        })
        .collect();
    let fleet = TestFleet::start(FleetSpec::new(hosts)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = lab(&fleet, state.path(), &["reboot"]);
    assert!(out.status.success(), "{}", text(&out));
    // The run's own span, from its journal: started to finished (fleet
    // evaluation and process start are not part of the schedule).
    let records = journal_records(state.path());
    let ms = |r: &serde_json::Value| r["timeMs"].as_u64().unwrap();
    let makespan = Duration::from_millis(ms(records.last().unwrap()) - ms(&records[0]));
    for r in records.iter().filter(|r| r["state"] != "planned") {
        eprintln!("{:>6} ms {} {}", ms(r) - ms(&records[0]), r["step"], r["state"]);
    }
    eprintln!("{}", where_the_time_goes(&fleet, &records, &names));
    assert_eq!(order_of(&fleet, "reboot-start"), names);
    // Lower bound: for each host its delay (1 s), its real time down (from
    // its log) and minHealthyTime (1 s); the critical path is the chain.
    let mut bound = Duration::ZERO;
    for n in names {
        let down = fleet.host(n).events("reboot-start")[0].at_us;
        let up = fleet.host(n).events("boot-complete").last().unwrap().at_us;
        bound += Duration::from_secs(2) + Duration::from_micros((up - down) as u64);
        assert_eq!(fleet.host(n).events("reboot-start").len(), 1, "{n} rebooted once");
    }
    let overhead = makespan.as_secs_f64() / bound.as_secs_f64() - 1.0;
    // What "back with a new boot id" costs any ssh-based tool once sshd
    // listens: one fresh ssh session reading the boot id (a full key
    // exchange). Measured here, on the same hosts, client and config.
    let session: Duration = names.iter().map(|n| fresh_session(&fleet, n)).sum();
    let with_session = makespan.as_secs_f64() / (bound + session).as_secs_f64() - 1.0;
    eprintln!(
        "6-host rolling reboot: makespan {:.2} s, lower bound {:.2} s, overhead {:.1} %; \
         counting one fresh ssh session per host ({:.0} ms median) in the bound: {:.1} %, {:.0} ms per host",
        makespan.as_secs_f64(),
        bound.as_secs_f64(),
        overhead * 100.0,
        session.as_secs_f64() * 1000.0 / names.len() as f64,
        with_session * 100.0,
        (makespan.as_secs_f64() - (bound + session).as_secs_f64()) * 1000.0 / names.len() as f64,
    );
    // Timing is a benchmark figure (benches/report.sh), not a pass/fail
    // test: this test only checks that it is measurable and sane.
    assert!(overhead > -0.05, "makespan below its lower bound: the bound is wrong");
    fleet.teardown().unwrap();
}

/// The median of 5 fresh (unmultiplexed) ssh sessions to `host` reading its
/// boot id: connection, key exchange, authentication, the command.
fn fresh_session(fleet: &TestFleet, host: &str) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let out = output_within(fleet.ssh(host).args(["cat", "/proc/sys/kernel/random/boot_id"]), RUN).unwrap();
            assert!(out.status.success(), "{host}: {}", text(&out));
            started.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

/// Per host, lab's share of the critical path, in ms: from the end of its
/// rebootDelay to the host going down, from the host's boot-complete to lab
/// seeing the new boot id, and the health step beyond minHealthyTime (1 s).
fn where_the_time_goes(fleet: &TestFleet, records: &[serde_json::Value], names: &[&str]) -> String {
    let at = |step: String, state: &str| {
        let r = records.iter().find(|r| r["step"] == step.as_str() && r["state"] == state);
        r.map_or(0, |r| r["timeMs"].as_u64().unwrap() as i64)
    };
    let mut lines = vec!["host  issue  detect  health (ms over the bound)".to_string()];
    for n in names {
        let host = fleet.host(n);
        let down = (host.events("reboot-start")[0].at_us / 1000) as i64;
        let up = (host.events("boot-complete").last().unwrap().at_us / 1000) as i64;
        let issue = down - at(format!("reboot/{n}/wait"), "finished");
        let detect = at(format!("reboot/{n}/wait-for-boot"), "finished") - up;
        let health = at(format!("reboot/{n}/health-checks"), "finished")
            - at(format!("reboot/{n}/health-checks"), "started")
            - 1000;
        lines.push(format!("{n:<5} {issue:>5}  {detect:>6}  {health:>6}"));
    }
    lines.join("\n")
}

#[test]
fn kill_9_mid_run_then_resume_finishes_without_redoing_a_step() {
    let names = ["k1", "k2", "k3"];
    let hosts = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut h = HostSpec::new(n).boot_delay(Duration::from_secs(1));
            h.metadata.orchestration.reboot_delay = 1;
            if i > 0 {
                h = h.depends_on(&[names[i - 1]]);
            }
            h
        })
        .collect();
    let fleet = TestFleet::start(FleetSpec::new(hosts)).unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = fleet.command(lab_e2e::lab_binary());
    cmd.arg("--file").arg(fleet.fleet_file()).args(["reboot"]);
    cmd.arg("--ssh-config").arg(fleet.ssh_config()).arg("--state-dir").arg(state.path());
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Kill it once k2 went down.
    assert!(fleet.host("k2").wait_for(Duration::from_secs(60), |h| !h.events("reboot-start").is_empty()));
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let out = lab_resume(&fleet, state.path());
    assert!(out.status.success(), "{}", text(&out));
    for n in names {
        assert_eq!(fleet.host(n).events("reboot-start").len(), 1, "{n} rebooted exactly once");
    }
    fleet.teardown().unwrap();
}

fn lab_resume(fleet: &TestFleet, state: &std::path::Path) -> Output {
    lab(fleet, state, &["resume"])
}

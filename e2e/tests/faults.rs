//! Host faults the orchestrator must survive: a host that never comes back
//! from a reboot, and a generation that breaks sshd, undone by a rollback
//! watchdog armed with `systemd-run --on-active` (and one disarmed in time).

use std::process::Output;
use std::time::{Duration, Instant};

use lab_e2e::run::ok;
use lab_e2e::{output_within, FleetSpec, HostMode, HostSpec, SystemSpec, TestFleet};

const STEP: Duration = Duration::from_secs(30);
const ROLLBACK: &str = "nix-env --profile /nix/var/nix/profiles/system --rollback && /nix/var/nix/profiles/system/bin/switch-to-configuration switch";

fn ssh(fleet: &TestFleet, host: &str, script: &str) -> Output {
    output_within(fleet.ssh(host).arg(script), STEP).unwrap()
}

#[test]
fn never_returns_and_sshd_watchdog() {
    let mut fleet = TestFleet::start(FleetSpec::new(vec![HostSpec::new("gone"), HostSpec::new("locked")])).unwrap();

    // A watchdog disarmed in time never fires.
    let gone = fleet.host("gone");
    ok(ssh(&fleet, "gone", "systemd-run --unit lab-watchdog --on-active=30 -- /bin/true"));
    assert_eq!(ok(ssh(&fleet, "gone", "systemctl is-active lab-watchdog.timer")), "active");
    ok(ssh(&fleet, "gone", "systemctl stop lab-watchdog.timer"));
    let out = ssh(&fleet, "gone", "systemctl is-active lab-watchdog.timer");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(gone.events("timer-cancelled").len(), 1);

    // never-returns, set during the test: down for good.
    gone.set_mode(HostMode::NeverReturns).unwrap();
    let _ = ssh(&fleet, "gone", "systemctl reboot");
    assert!(gone.wait_for(Duration::from_secs(30), |h| !h.events("never-returns").is_empty()));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!gone.ssh_up() && !gone.port_open(80) && !gone.port_open(5432));
    assert_eq!(gone.events("boot").len(), 1);
    assert_eq!(gone.http_health(Duration::from_millis(300)), None);

    // A generation that breaks sshd, with a 2 s rollback watchdog armed
    // first, as deploy-rs's magic rollback does.
    let gen2 = fleet.write_generation(2, &[("locked", SystemSpec::breaks_sshd())]).unwrap();
    let locked = fleet.host("locked");
    let gen1 = locked.current_system().unwrap();
    ok(ssh(
        &fleet,
        "locked",
        &format!("systemd-run --unit lab-rollback --on-active=2 --collect -- /bin/sh -c '{ROLLBACK}'"),
    ));
    ok(ssh(
        &fleet,
        "locked",
        &format!("nix-env --profile /nix/var/nix/profiles/system --set {}", gen2["locked"].display()),
    ));
    let t = Instant::now();
    // The session that activates survives sshd stopping; new ones are refused.
    ok(ssh(&fleet, "locked", "systemd-run --unit lab-switch --wait --pipe --collect -- /nix/var/nix/profiles/system/bin/switch-to-configuration switch"));
    assert!(!ssh(&fleet, "locked", "true").status.success(), "sshd still answers after a breaking activation");
    // The watchdog fires after 2 s; the wait ends when sshd is back (30 s only stops a hang).
    assert!(locked.wait_for(Duration::from_secs(30), |h| h.ssh_up()), "the watchdog did not bring sshd back");
    eprintln!("locked out for {:?} until the watchdog rolled back", t.elapsed());
    assert_eq!(ok(ssh(&fleet, "locked", "readlink /run/current-system")), gen1.display().to_string());
    assert_eq!(locked.profile_system().unwrap(), gen1);
    let order: Vec<(String, Option<String>)> = locked
        .log()
        .into_iter()
        .filter(|e| {
            ["timer-armed", "activate", "service-stop", "timer-fired", "service-start"].contains(&e.event.as_str())
        })
        .map(|e| (e.event.clone(), e.field("generation").map(str::to_string)))
        .skip(3) // the boot: activate and two service-starts
        .collect();
    let expected: Vec<(String, Option<String>)> = [
        ("timer-armed", None),
        ("activate", Some("2")),
        ("service-stop", None),
        ("timer-fired", None),
        ("activate", Some("1")),
        ("service-start", None),
    ]
    .into_iter()
    .map(|(e, g)| (e.to_string(), g.map(str::to_string)))
    .collect();
    assert_eq!(order, expected, "{:#?}", locked.log());

    fleet.teardown().unwrap();
}

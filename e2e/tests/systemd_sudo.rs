//! Non-root targets through a real sudo on hosts that boot a real systemd
//! (issue 15, cases 3 and 6): NOPASSWD, a password given with
//! `--ask-sudo-password` (no prompt, no hang), and a new generation that
//! removes NOPASSWD, which lab never reports as a success.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

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

/// `lab ARGS…` with `input` on its standard input, bounded in time.
fn lab_with_input(fleet: &SystemdFleet, state: &Path, args: &[&str], input: &str) -> Output {
    let mut cmd = fleet.lab(state, args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lab did not end within {LIMIT:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn nopasswd_deploys_and_a_generation_that_removes_nopasswd_is_never_reported_a_success() {
    let mut fleet = SystemdFleet::start(vec![host("sudo1", 4)]).unwrap();
    fleet.make_target_user("sudo1", "deploy", None).unwrap();
    let gen2 = fleet.write_generation(2, &[("sudo1", SystemSpec::healthy())]).unwrap()["sudo1"].clone();
    let state = tempfile::tempdir().unwrap();
    let out = lab_e2e::output_within(&mut fleet.lab(state.path(), &["deploy", "--json"]), LIMIT).unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // The host's own log: lab's privileged commands ran through sudo as deploy.
    let sudo = fleet.run("sudo1", &["journalctl", "--no-pager", "_COMM=sudo"]).unwrap();
    assert!(sudo.contains("deploy : ") && sudo.contains("systemd-run"), "{sudo}");
    let links = fleet.links("sudo1").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    assert_eq!(fleet.lab_timers("sudo1").unwrap(), Vec::<String>::new());

    // gen3 takes NOPASSWD away: lab cannot disarm its watchdogs, so it
    // must not report success; the watchdog then puts gen2 back.
    let gen3 = fleet
        .write_generation(
            3,
            &[("sudo1", SystemSpec { behaviour: lab_e2e::Behaviour::RemovesNopasswd, ..SystemSpec::healthy() })],
        )
        .unwrap()["sudo1"]
        .clone();
    let out = lab_e2e::output_within(&mut fleet.lab(state.path(), &["deploy", "--json"]), LIMIT).unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("password"), "the refusal is sudo's: {log}");
    let until = Instant::now() + LIMIT;
    loop {
        let links = fleet.links("sudo1").unwrap();
        if links.current == gen2 && fleet.lab_timers("sudo1").unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < until, "the watchdog never put gen2 back: {links:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let links = fleet.links("sudo1").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    assert_ne!(links.current, gen3);
    let rule = fleet.run("sudo1", &["cat", "/etc/sudoers.d/lab-deploy"]).unwrap();
    assert!(rule.contains("NOPASSWD"), "gen2's rule is back: {rule}");
    fleet.teardown();
}

#[test]
fn a_sudo_password_given_with_ask_sudo_password_deploys_without_a_prompt() {
    let mut fleet = SystemdFleet::start(vec![host("sudo2", 4)]).unwrap();
    fleet.make_target_user("sudo2", "deploy", Some("e2e-secret-pw")).unwrap();
    let gen2 = fleet.write_generation(2, &[("sudo2", SystemSpec::healthy())]).unwrap()["sudo2"].clone();
    let state = tempfile::tempdir().unwrap();

    // Without the password, sudo -n refuses at once: no prompt, no hang.
    let out = lab_with_input(&fleet, state.path(), &["deploy", "--json"], "");
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("password is required"), "{log}");
    assert_eq!(fleet.links("sudo2").unwrap().current, fleet.links("sudo2").unwrap().booted, "nothing changed");

    let out = lab_with_input(&fleet, state.path(), &["deploy", "--ask-sudo-password", "--json"], "e2e-secret-pw\n");
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("[sudo] password"), "sudo never prompted: {log}");
    assert!(!log.contains("e2e-secret-pw"), "the password is never printed: {log}");
    let links = fleet.links("sudo2").unwrap();
    assert_eq!((&links.current, &links.profile, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    assert_eq!(fleet.lab_timers("sudo2").unwrap(), Vec::<String>::new());
    fleet.teardown();
}

//! Reboots against hosts that boot a real systemd: a reboot the machine
//! refuses is reported at once with the machine's own message, and a
//! machine that comes back must run its boot default.

use std::time::{Duration, Instant};

use lab_e2e::run::text;
use lab_e2e::systemd_fleet::SystemdFleet;
use lab_e2e::{HostSpec, SystemSpec};

/// Every wait here stops a hang; none measures.
const LIMIT: Duration = Duration::from_secs(400);

fn host(name: &str, reboot_timeout: i64) -> HostSpec {
    let mut spec = HostSpec::new(name);
    spec.metadata.orchestration.reboot_timeout = reboot_timeout;
    spec
}

fn lab(fleet: &SystemdFleet, state: &std::path::Path, args: &[&str]) -> std::process::Output {
    lab_e2e::output_within(&mut fleet.lab(state, args), LIMIT).unwrap()
}

#[test]
fn a_refused_reboot_is_reported_at_once_with_the_machines_message() {
    let fleet = SystemdFleet::start(vec![host("rb1", 300)]).unwrap();
    let before = fleet.boot_id("rb1").unwrap();
    // systemd refuses: `reboot` answers "Call to Reboot failed: Access
    // denied" and exits 1, as it does for a block inhibitor under systemd
    // 257 (252, on these hosts, lets root pass an inhibitor from a non-tty).
    fleet.run("rb1", &["systemctl", "mask", "--runtime", "reboot.target"]).unwrap();
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = lab(&fleet, state.path(), &["reboot", "--json"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("refused the reboot") && log.contains("Access denied"), "{log}");
    // Not waited out to rebootTimeout (300 s): half of it only stops a hang.
    assert!(started.elapsed() < Duration::from_secs(150), "took {:?}: {log}", started.elapsed());
    assert_eq!(fleet.boot_id("rb1").unwrap(), before, "it did not reboot");
    fleet.teardown();
}

#[test]
fn after_a_reboot_the_machine_must_run_its_boot_default() {
    let mut fleet = SystemdFleet::start(vec![host("rb2", 120)]).unwrap();
    let gen1 = fleet.links("rb2").unwrap();
    let gen2 =
        fleet.write_generation(2, &[("rb2", SystemSpec::healthy().with_kernel("linux-6.6.2"))]).unwrap()["rb2"].clone();
    let state = tempfile::tempdir().unwrap();

    // A boot deploy, then a reboot: the machine boots the deployed system.
    let out = lab(&fleet, state.path(), &["deploy", "--goal", "boot"]);
    assert!(out.status.success(), "{}", text(&out));
    let links = fleet.links("rb2").unwrap();
    assert_eq!(
        (links.current.clone(), links.profile.clone(), links.boot_default.clone()),
        (gen1.current.clone(), gen2.clone(), gen2.clone())
    );
    let out = lab(&fleet, state.path(), &["reboot", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let links = fleet.links("rb2").unwrap();
    assert_eq!(links.booted, gen2, "{links:?}");
    assert_eq!(links.current, gen2, "{links:?}");

    // A boot loader left behind: the profile says gen3, the boot entry
    // still starts gen2. lab sees the machine come back on the wrong system.
    let gen3 =
        fleet.write_generation(3, &[("rb2", SystemSpec::healthy().with_kernel("linux-6.6.3"))]).unwrap()["rb2"].clone();
    let out = lab(&fleet, state.path(), &["deploy", "--goal", "boot"]);
    assert!(out.status.success(), "{}", text(&out));
    let gen2_text = gen2.to_str().unwrap();
    fleet.run("rb2", &["ln", "-sfn", gen2_text, "/boot/lab-default"]).unwrap();
    let out = lab(&fleet, state.path(), &["reboot", "--json"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains(&format!("it booted {gen2_text}, not its boot default {}", gen3.display())), "{log}");
    assert_eq!(fleet.links("rb2").unwrap().booted, gen2);
    fleet.teardown();
}

/// Case 8: a block inhibitor held on the machine (a backup, say) refuses
/// lab's reboot at once with the machine's own message: lab asks systemd
/// to check inhibitors (`--check-inhibitors=yes`), which systemd 252 on
/// these hosts would otherwise let root pass from a non-tty (257 enforces
/// them for root anyway). Once the inhibitor is gone, the reboot goes.
#[test]
fn a_reboot_while_a_block_inhibitor_is_held_is_refused_at_once_with_the_machines_message() {
    let fleet = SystemdFleet::start(vec![host("rb3", 300)]).unwrap();
    let before = fleet.boot_id("rb3").unwrap();
    let inhibit = [
        "systemd-run",
        "--unit=e2e-backup",
        "--description=e2e-backup",
        "systemd-inhibit",
        "--what=shutdown",
        "--mode=block",
        "--who=e2e-backup",
        "--why=backup-running",
        "sleep",
        "600",
    ];
    fleet.run("rb3", &inhibit).unwrap();
    let until = Instant::now() + LIMIT;
    while !fleet.run("rb3", &["systemd-inhibit", "--list", "--no-pager"]).unwrap().contains("e2e-backup") {
        assert!(Instant::now() < until, "the inhibitor never showed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let state = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = lab(&fleet, state.path(), &["reboot", "--json"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("refused the reboot") && log.contains("e2e-backup"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(150), "took {:?}: {log}", started.elapsed());
    assert_eq!(fleet.boot_id("rb3").unwrap(), before, "it did not reboot");

    fleet.run("rb3", &["systemctl", "stop", "e2e-backup"]).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = lab(&fleet, state.path(), &["reboot", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_ne!(fleet.boot_id("rb3").unwrap(), before, "it rebooted once the inhibitor was gone");
    fleet.teardown();
}

/// Case 8: `--only-if-needed` after a deploy that changed the kernel
/// reboots, and the machine then boots the deployed system; after one that
/// changed no kernel, initrd or module, it does not reboot.
#[test]
fn only_if_needed_reboots_for_a_kernel_change_and_not_for_another_change() {
    let mut fleet = SystemdFleet::start(vec![host("rb4", 120)]).unwrap();
    let gen1 = fleet.links("rb4").unwrap();
    let gen2 =
        fleet.write_generation(2, &[("rb4", SystemSpec::healthy().with_kernel("linux-6.6.9"))]).unwrap()["rb4"].clone();
    let state = tempfile::tempdir().unwrap();
    let out = lab(&fleet, state.path(), &["deploy"]);
    assert!(out.status.success(), "{}", text(&out));
    let before = fleet.boot_id("rb4").unwrap();
    let out = lab(&fleet, state.path(), &["reboot", "--only-if-needed", "--no-delay", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let after = fleet.boot_id("rb4").unwrap();
    assert_ne!(after, before, "a kernel change needs a reboot: {}", text(&out));
    let links = fleet.links("rb4").unwrap();
    assert_eq!((&links.booted, &links.current, &links.boot_default), (&gen2, &gen2, &gen2), "{links:?}");
    assert_ne!(links.booted, gen1.booted);

    // gen3: the same kernel, initrd and modules, another system.
    let other =
        SystemSpec { activation_delay: Duration::from_millis(200), ..SystemSpec::healthy().with_kernel("linux-6.6.9") };
    let gen3 = fleet.write_generation(3, &[("rb4", other)]).unwrap()["rb4"].clone();
    let out = lab(&fleet, state.path(), &["deploy"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = lab(&fleet, state.path(), &["reboot", "--only-if-needed", "--no-delay", "--json"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("no reboot needed"), "{log}");
    assert_eq!(fleet.boot_id("rb4").unwrap(), after, "no reboot for a change outside the kernel");
    let links = fleet.links("rb4").unwrap();
    assert_eq!((&links.current, &links.profile, &links.booted), (&gen3, &gen3, &gen2), "{links:?}");
    assert_eq!(fleet.lab_timers("rb4").unwrap(), Vec::<String>::new());
    fleet.teardown();
}

/// Case 9 (a host that never comes back, moved to these hosts): the
/// machine goes down through systemd's real shutdown and is not booted
/// again; lab fails it at rebootTimeout and never touches the machine that
/// depends on it.
#[test]
fn a_host_that_never_comes_back_fails_at_reboot_timeout_and_its_dependent_is_untouched() {
    let fleet = SystemdFleet::start(vec![host("nr1", 8), host("nr2", 8).depends_on(&["nr1"])]).unwrap();
    let before = (fleet.boot_id("nr1").unwrap(), fleet.boot_id("nr2").unwrap());
    fleet.host("nr1").never_return();
    let state = tempfile::tempdir().unwrap();
    let out = lab(&fleet, state.path(), &["reboot", "--no-delay", "--json"]);
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("rebootTimeout is 8 s"), "{log}");
    assert!(fleet.host("nr1").console().contains("lab-e2e: not booting again"), "nr1 went down for good");
    assert!(fleet.boot_id("nr1").is_err(), "nr1 is down");
    assert_eq!(fleet.boot_id("nr2").unwrap(), before.1, "nr2 depends on nr1 and was not rebooted: {log}");
    fleet.teardown();
}

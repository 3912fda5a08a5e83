//! The harness proven with plain ssh and nix (no lab): a 6-host fleet boots
//! with distinct identities, takes a real `nix copy`, a real `nix-env`
//! profile switch and an activation through the `systemd-run` stand-in,
//! reboots with a new boot id, and leaves nothing behind.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lab_e2e::run::ok;
use lab_e2e::{output_within, FleetSpec, HostSpec, SystemSpec, TestFleet};

const STEP: Duration = Duration::from_secs(30);

fn ssh(fleet: &TestFleet, host: &str, script: &str) -> Output {
    output_within(fleet.ssh(host).arg(script), STEP).unwrap()
}

/// The events of a host's log, in order, restricted to `wanted`.
fn events(fleet: &TestFleet, host: &str, wanted: &[&str]) -> Vec<String> {
    fleet.host(host).log().into_iter().map(|e| e.event).filter(|e| wanted.contains(&e.as_str())).collect()
}

#[test]
fn six_hosts_copy_activate_and_reboot() {
    let started = Instant::now();
    let names = ["a", "b", "c", "d", "e", "f"];
    let spec = FleetSpec::new(
        names.iter().enumerate().map(|(i, n)| HostSpec::new(n).depends_on(if i == 0 { &[] } else { &["a"] })).collect(),
    );
    let mut fleet = TestFleet::start(spec).unwrap();
    eprintln!("6 hosts up in {:?}", started.elapsed());

    // Distinct identities, seen from the controller and over ssh.
    let boot_ids: BTreeSet<String> = fleet.hosts().iter().map(|h| h.boot_id()).collect();
    assert_eq!(boot_ids.len(), 6, "{boot_ids:?}");
    let mut systems = BTreeSet::new();
    for h in fleet.hosts() {
        let seen = ok(ssh(&fleet, h.name(), "cat /proc/sys/kernel/random/boot_id; readlink /run/current-system; readlink /run/booted-system; hostname; command -v reboot systemctl systemd-run"));
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines[0], h.boot_id());
        let current = h.current_system().unwrap();
        assert_eq!(Path::new(lines[1]), current);
        assert_eq!(Path::new(lines[2]), current);
        assert_eq!(h.profile_system().unwrap(), current);
        assert_eq!(lines[3], h.name());
        assert_eq!(&lines[4..], ["/usr/local/bin/reboot", "/usr/local/bin/systemctl", "/usr/local/bin/systemd-run"]);
        assert_eq!(h.http_health(Duration::from_secs(10)), Some(200));
        assert!(h.port_open(5432));
        systems.insert(current);
    }
    assert_eq!(systems.len(), 6);

    // Host keys are really checked: b's key does not pass for a.
    let wrong = fleet.dir().join("wrong_known_hosts");
    let b_key = std::fs::read_to_string(fleet.host("b").dir().join("ssh/ssh_host_ed25519_key.pub")).unwrap();
    std::fs::write(
        &wrong,
        format!("{} {}\n", fleet.host("a").addr(), b_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")),
    )
    .unwrap();
    let out = output_within(
        Command::new("ssh")
            .arg("-F")
            .arg(fleet.ssh_config())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", wrong.display()))
            .args([&format!("root@{}", fleet.host("a").addr()), "true"]),
        STEP,
    )
    .unwrap();
    assert!(!out.status.success(), "a wrong host key was accepted");

    // Generation 2 of a: unhealthy. Copy, set the profile, activate.
    let gen2 = fleet.write_generation(2, &[("a", SystemSpec::unhealthy())]).unwrap();
    let a2 = gen2["a"].display().to_string();
    let a = fleet.host("a");
    let copy =
        output_within(fleet.command("nix").args(["copy", "--to", &format!("ssh://root@{}", a.addr()), &a2]), STEP)
            .unwrap();
    ok(copy);
    ok(ssh(&fleet, "a", &format!("nix-env --profile /nix/var/nix/profiles/system --set {a2}")));
    assert_eq!(a.profile_system().unwrap().display().to_string(), a2);
    let switch = ssh(&fleet, "a", "systemd-run --unit lab-switch --wait --pipe --collect --quiet --no-ask-password --service-type=exec -E LOCALE_ARCHIVE=/x -p Restart=no -- /nix/var/nix/profiles/system/bin/switch-to-configuration switch");
    ok(switch);
    assert_eq!(a.current_system().unwrap().display().to_string(), a2);
    assert_ne!(a.booted_system().unwrap().display().to_string(), a2);
    assert_eq!(a.http_health(Duration::from_secs(10)), Some(500));
    assert_eq!(
        events(
            &fleet,
            "a",
            &["systemd-run", "unit-start", "switch-to-configuration", "activate", "activate-done", "unit-exit"]
        )[2..],
        ["systemd-run", "unit-start", "switch-to-configuration", "activate", "activate-done", "unit-exit"]
    );

    // Reboot: a new boot id, back within bounds with its services, booted
    // into the profile's generation.
    let before = a.boot_id();
    let t = Instant::now();
    let _ = ssh(&fleet, "a", "reboot"); // exit 0, or 255 if the link drops first
    assert!(
        a.wait_for(Duration::from_secs(10), |h| h.boot_id() != before && h.ssh_up() && h.port_open(5432)),
        "a did not come back"
    );
    eprintln!("reboot round trip (300 ms boot delay) {:?}", t.elapsed());
    assert_eq!(ok(ssh(&fleet, "a", "cat /proc/sys/kernel/random/boot_id")), a.boot_id());
    assert_eq!(a.booted_system().unwrap().display().to_string(), a2);
    assert_eq!(a.http_health(Duration::from_secs(10)), Some(500));
    assert_eq!(
        events(&fleet, "a", &["reboot-requested", "reboot-start", "down", "boot", "boot-complete"])[2..],
        ["reboot-requested", "reboot-start", "down", "boot", "boot-complete"]
    );
    // Nobody else moved.
    assert!(fleet.hosts()[1..].iter().all(|h| h.events("boot").len() == 1));

    let t = Instant::now();
    fleet.teardown().unwrap();
    eprintln!("teardown {:?}; whole test {:?}", t.elapsed(), started.elapsed());
}

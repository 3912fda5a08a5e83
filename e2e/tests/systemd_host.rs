//! The systemd test hosts are real machines in miniature: each boots
//! systemd as its PID 1 with its own host key, hostname, boot id and /nix
//! store; transient units and timers are systemd's own and fire on time;
//! a reboot is a real shutdown and a new boot.

use std::time::{Duration, Instant};

use lab_e2e::systemd_fleet::SystemdFleet;

/// Every wait here stops a hang; none measures.
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn hosts_boot_a_real_systemd_and_reboot_with_a_new_boot_id() {
    let fleet = SystemdFleet::boot(&["sd1", "sd2"]).unwrap();
    let mut boot_ids = Vec::new();
    for name in ["sd1", "sd2"] {
        // ssh checked the host's own key strictly (StrictHostKeyChecking yes).
        let seen =
            fleet.run(name, &["sh", "-c", "hostname; ps -p 1 -o comm=; systemctl is-system-running --wait"]).unwrap();
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines[0], name, "{seen}");
        assert_eq!(lines[1], "systemd", "PID 1 is systemd: {seen}");
        assert!(["running", "degraded"].contains(&lines[2]), "{seen}");
        boot_ids.push(fleet.boot_id(name).unwrap());
    }
    assert_ne!(boot_ids[0], boot_ids[1], "each host has its own boot id");

    // A transient timer is systemd's own: listed while armed, fires near
    // its deadline with a small AccuracySec, and is gone after.
    fleet
        .run(
            "sd1",
            &[
                "systemd-run",
                "--unit",
                "lab-e2e-t",
                "--on-active=2",
                "--timer-property=AccuracySec=100ms",
                "touch",
                "/root/fired",
            ],
        )
        .unwrap();
    let timers = fleet.run("sd1", &["systemctl", "list-timers", "lab-*", "--no-legend"]).unwrap();
    assert!(timers.contains("lab-e2e-t.timer"), "{timers}");
    let armed = Instant::now();
    let deadline = armed + LIMIT;
    while fleet.run("sd1", &["test", "-e", "/root/fired"]).is_err() {
        assert!(Instant::now() < deadline, "the timer never fired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(armed.elapsed() >= Duration::from_millis(1500), "fired before its deadline: {:?}", armed.elapsed());
    assert!(fleet.run("sd2", &["test", "-e", "/root/fired"]).is_err(), "sd2 has its own file system");
    let timers = fleet.run("sd1", &["systemctl", "list-timers", "lab-*", "--no-legend"]).unwrap();
    assert!(!timers.contains("lab-e2e-t.timer"), "{timers}");

    // A reboot goes through systemd's shutdown and comes back as a new boot.
    let _ = lab_e2e::output_within(&mut fleet.ssh("sd1", &["systemctl", "reboot"]), LIMIT);
    let new = fleet.wait_for_new_boot("sd1", &boot_ids[0], LIMIT).unwrap();
    assert_ne!(new, boot_ids[0]);
    let console = fleet.host("sd1").console();
    assert!(console.contains("lab-e2e: nspawn exited 133"), "{console}");
    assert!(fleet.run("sd1", &["test", "-e", "/root/fired"]).is_ok(), "the disk survives a reboot");
    assert_eq!(fleet.boot_id("sd2").unwrap(), boot_ids[1], "sd2 did not reboot");
    fleet.teardown();
}

#[test]
fn each_host_has_its_own_nix_store_that_nix_copy_fills() {
    let fleet = SystemdFleet::boot(&["store1"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload");
    std::fs::write(&file, format!("lab e2e payload {:?}\n", Instant::now())).unwrap();
    let add = std::process::Command::new("nix-store").arg("--add").arg(&file).output().unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let path = String::from_utf8_lossy(&add.stdout).trim().to_string();
    assert!(fleet.run("store1", &["nix-store", "--check-validity", &path]).is_err(), "not there before the copy");
    let copy = lab_e2e::output_within(
        std::process::Command::new("nix")
            .args(["--extra-experimental-features", "nix-command", "copy", "--to", "ssh://store1", &path])
            .env("NIX_SSHOPTS", format!("-F {}", fleet.ssh_config().display())),
        LIMIT,
    )
    .unwrap();
    assert!(copy.status.success(), "{}", String::from_utf8_lossy(&copy.stderr));
    fleet.run("store1", &["nix-store", "--check-validity", &path]).unwrap();
    let upper = fleet.host("store1").upper().join(path.trim_start_matches('/'));
    assert!(upper.exists(), "the copy landed in the host's own store, not the shared root: {}", upper.display());
    fleet.teardown();
}

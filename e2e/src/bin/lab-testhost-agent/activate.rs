//! What a test system's store path runs: `$out/activate` and
//! `$out/bin/switch-to-configuration GOAL` are one-line scripts that call
//! these, passing `$out`. The system's behaviour knobs are in
//! `$out/lab-test.conf` (written by its Nix derivation).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab_e2e::layout::{self, read_conf};

use crate::{control, Host};

/// `activate SYSTEM`: the system's activation script.
pub fn activate_cmd(host: &Host, args: &[String]) -> i32 {
    match args {
        [system] => activate(host, Path::new(system)),
        _ => {
            eprintln!("usage: activate SYSTEM");
            2
        }
    }
}

/// Makes `system` the running one: /run/current-system, the health answer
/// and sshd as its behaviour says. At boot (`LAB_TEST_BOOT`), services are
/// left to init, which starts them after activation.
fn activate(host: &Host, system: &Path) -> i32 {
    let conf = system.join("lab-test.conf");
    let knob = |key: &str| read_conf(&conf, key).unwrap_or_default();
    let behaviour = knob("behaviour");
    let at_boot = std::env::var_os("LAB_TEST_BOOT").is_some();
    let system_str = system.display().to_string();
    host.log(
        "activate",
        &[
            ("system", &system_str),
            ("behaviour", &behaviour),
            ("generation", &knob("generation")),
            ("at-boot", if at_boot { "yes" } else { "no" }),
        ],
    );
    std::thread::sleep(Duration::from_millis(knob("activation-delay-ms").parse().unwrap_or(0)));

    let link = Path::new("/run/current-system");
    let tmp = PathBuf::from("/run/.current-system.lab-tmp");
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = symlink(system, &tmp).and_then(|_| std::fs::rename(&tmp, link)) {
        eprintln!("activate: /run/current-system: {e}");
        return 1;
    }
    let health = match behaviour.as_str() {
        "unhealthy" => "500",
        "hangs" => "hang",
        _ => "200",
    };
    let _ = std::fs::create_dir_all(layout::RUN_STATE);
    let _ = std::fs::write(layout::HEALTH_STATUS, format!("{health}\n"));
    let breaks_sshd = behaviour == "breaks-sshd";
    if breaks_sshd {
        let _ = std::fs::write(layout::SSHD_BROKEN, "");
    } else {
        let _ = std::fs::remove_file(layout::SSHD_BROKEN);
    }
    if !at_boot {
        // Like switch-to-configuration restarting changed units: a broken
        // sshd stops listening; a good one (re)starts if it was down.
        let request = if breaks_sshd { "stop sshd" } else { "start sshd" };
        if let Err(e) = control::request(host, request) {
            eprintln!("activate: {e}");
        }
    }
    let exit: i32 = knob("activation-exit").parse().unwrap_or(0);
    host.log("activate-done", &[("system", &system_str), ("health", health), ("exit", &exit.to_string())]);
    exit
}

/// `switch-to-configuration SYSTEM GOAL`, as NixOS's: `switch` and `test`
/// activate (the running system changes); `boot` only makes the system the
/// boot default, which for a test host is whatever the system profile points
/// to (the caller sets the profile first, as nixos-rebuild does), so it only
/// records the fact; `dry-activate` records what would be done.
pub fn switch_to_configuration(host: &Host, args: &[String]) -> i32 {
    let (system, goal) = match args {
        [system, goal] => (Path::new(system), goal.as_str()),
        _ => {
            eprintln!("Usage: switch-to-configuration [switch|boot|test|dry-activate]");
            return 1;
        }
    };
    let system_str = system.display().to_string();
    host.log("switch-to-configuration", &[("goal", goal), ("system", &system_str)]);
    match goal {
        "switch" | "test" => activate(host, system),
        "boot" => {
            let default =
                std::fs::canonicalize(layout::SYSTEM_PROFILE).map(|p| p.display().to_string()).unwrap_or_default();
            host.log("boot-default", &[("system", &default)]);
            0
        }
        "dry-activate" => {
            eprintln!("would activate {system_str}");
            0
        }
        _ => {
            eprintln!("Usage: switch-to-configuration [switch|boot|test|dry-activate]");
            1
        }
    }
}

//! The switch log the systemd hosts' switch-to-configuration model writes
//! (`e2e/nix/switch-to-configuration.sh`): one line per event, so tests can
//! tell from the machine itself what switched, when and in which order.

use std::path::PathBuf;

use crate::systemd_fleet::SystemdFleet;

/// One line of the log: (time in seconds, event, action, system). Events are
/// `start`, `end-STATUS`, `hold-start`, …; actions `switch`, `boot`, `test`.
pub type Switch = (f64, String, String, PathBuf);

/// `host`'s switch log, oldest first.
pub fn switches(fleet: &SystemdFleet, host: &str) -> Vec<Switch> {
    let log = fleet.run(host, &["cat", "/var/log/lab-switch.log"]).unwrap();
    log.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[1].to_string(), f[2].to_string(), PathBuf::from(f[3]))
        })
        .collect()
}

//! lab's end-to-end test fleet: real machines in miniature.
//!
//! [`TestFleet::start`] boots test hosts, each in its own network, mount and
//! UTS namespace at 10.231.0.N, with a real sshd (its own host key, checked
//! by the controller), an HTTP health endpoint and a TCP service, its own
//! /run (current-system, booted-system), boot id and system profile, and
//! stand-ins for the NixOS commands lab drives (`reboot`, `systemctl`,
//! `systemd-run`). Their systems are real store paths built by nix from a
//! fleet file lab can read (`lab --file`). Every action a host takes is
//! appended to its log ([`hostlog`]), which tests read to check order.
//! A host can be given latency ([`HostSpec::latency`]) or a new host key
//! ([`TestHost::replace_host_key`]); [`run`] runs `lab` against the fleet.
//!
//! ```no_run
//! use lab_e2e::{FleetSpec, HostSpec, SystemSpec, TestFleet};
//! let mut fleet = TestFleet::start(FleetSpec::new(vec![
//!     HostSpec::new("db"),
//!     HostSpec::new("web").depends_on(&["db"]),
//! ])).unwrap();
//! fleet.write_generation(2, &[("web", SystemSpec::unhealthy())]).unwrap();
//! // run `lab deploy --file <fleet_file> --ssh-config <ssh_config>` …
//! let order = fleet.merged_log();
//! # let _ = order;
//! fleet.teardown().unwrap();
//! ```

pub mod bounded;
pub mod fleet;
pub mod host;
pub mod hostlog;
pub mod layout;
pub mod netns;
pub mod nixsys;
pub mod run;
pub mod served;
pub mod spec;
pub mod ssh;
pub mod switch_log;
pub mod systemd_fleet;
pub mod systemd_host;

pub use bounded::output_within;
pub use fleet::TestFleet;
pub use host::TestHost;
pub use hostlog::LogEntry;
pub use nixsys::{Behaviour, SystemSpec};
pub use spec::{FleetSpec, HostMode, HostSpec};

/// The `lab` binary the workspace built, found beside the running test
/// binary (`target/PROFILE/deps/…` → `target/PROFILE/lab`).
pub fn lab_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let bin = exe.ancestors().skip(1).take(2).map(|d| d.join("lab")).find(|p| p.is_file());
    bin.unwrap_or_else(|| panic!("lab not built next to {}; run `cargo build -p lab-cli` first", exe.display()))
}

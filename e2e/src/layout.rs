//! Where a test host keeps things, shared by the harness (controller side)
//! and the host's own tooling (`lab-testhost-agent`).
//!
//! Each host has a directory on the controller (under the fleet's temp dir)
//! that survives its reboots, like a disk: its log, boot id, ssh keys, system
//! profile and stand-in commands. Inside the host, /run is a private tmpfs
//! that a reboot wipes, like the real one.

use std::path::{Path, PathBuf};

/// Host-side state that a reboot wipes (inside the host's private /run).
pub const RUN_STATE: &str = "/run/lab-test";
/// What GET /health answers: a status code (`200`, `500`, …) or `hang`.
/// Missing means 200.
pub const HEALTH_STATUS: &str = "/run/lab-test/health-status";
/// Present while the running system's activation has broken sshd: sshd
/// then refuses to start, as a broken sshd_config would make it.
pub const SSHD_BROKEN: &str = "/run/lab-test/sshd-broken";
/// Transient units of the `systemd-run` stand-in, one directory each.
pub const UNITS: &str = "/run/lab-test/units";
/// The system profile, as NixOS names it (bind-mounted per host).
pub const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system";
/// The port of the host's HTTP health endpoint.
pub const HTTP_PORT: u16 = 80;
/// The port of the host's TCP service (echo).
pub const TCP_PORT: u16 = 5432;
/// The search path units and activations run with (systemd's default).
pub const UNIT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A test host's directory on the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDir {
    /// The directory itself.
    pub root: PathBuf,
}

impl HostDir {
    /// Wraps a host directory path.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HostDir { root: root.into() }
    }

    fn at(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `name=…` lines the host's tooling reads (currently just the name).
    pub fn conf(&self) -> PathBuf {
        self.at("host.conf")
    }
    /// The event log (see [`crate::hostlog`]).
    pub fn log(&self) -> PathBuf {
        self.at("log")
    }
    /// The host's boot id, bind-mounted over /proc/sys/kernel/random/boot_id.
    pub fn boot_id(&self) -> PathBuf {
        self.at("boot_id")
    }
    /// `normal` or `never-returns`; read at each reboot.
    pub fn mode(&self) -> PathBuf {
        self.at("mode")
    }
    /// Milliseconds a reboot stays down; read at each reboot.
    pub fn boot_delay_ms(&self) -> PathBuf {
        self.at("boot-delay-ms")
    }
    /// The host init's control socket.
    pub fn init_socket(&self) -> PathBuf {
        self.at("init.sock")
    }
    /// The init's pid (for entering the host's namespaces).
    pub fn init_pid(&self) -> PathBuf {
        self.at("init.pid")
    }
    /// Bind-mounted over /nix/var/nix/profiles inside the host.
    pub fn profiles(&self) -> PathBuf {
        self.at("profiles")
    }
    /// Stand-in commands, bind-mounted over /usr/local/bin inside the host.
    pub fn bin(&self) -> PathBuf {
        self.at("bin")
    }
    /// sshd's config, host key and authorized keys.
    pub fn ssh(&self) -> PathBuf {
        self.at("ssh")
    }
    /// sshd's config file.
    pub fn sshd_config(&self) -> PathBuf {
        self.at("ssh/sshd_config")
    }
    /// Standard error of a service or of the init.
    pub fn service_log(&self, service: &str) -> PathBuf {
        self.at(&format!("{service}.stderr"))
    }
    /// Reads the host's name from [`HostDir::conf`].
    pub fn name(&self) -> String {
        read_conf(&self.conf(), "name").unwrap_or_else(|| "unknown".into())
    }
}

/// The value of `key=` in a `key=value` file.
pub fn read_conf(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

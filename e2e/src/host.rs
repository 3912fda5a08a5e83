//! One running test host, seen from the controller.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::hostlog::{self, LogEntry};
use crate::layout::{self, HostDir};
use crate::netns::{self, Slot};
use crate::spec::HostMode;

/// A running test host.
pub struct TestHost {
    pub(crate) name: String,
    pub(crate) slot: Slot,
    pub(crate) ns: String,
    pub(crate) dir: HostDir,
    pub(crate) init: Option<Child>,
}

impl TestHost {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its address (its `targetHost`).
    pub fn addr(&self) -> Ipv4Addr {
        self.slot.addr()
    }
    /// N of its address 10.231.0.N (also its veth's number).
    pub fn slot(&self) -> u8 {
        self.slot.n
    }
    /// Its network namespace (`ip netns exec NS …`, `ip -n NS …`).
    pub fn netns(&self) -> &str {
        &self.ns
    }
    /// Its directory on the controller (log, boot id, profiles, keys).
    pub fn dir(&self) -> &Path {
        &self.dir.root
    }
    /// The pid of its init, for `nsenter -t PID -m -u -n`.
    pub fn init_pid(&self) -> Option<u32> {
        self.init.as_ref().map(Child::id)
    }

    /// Its current boot id.
    pub fn boot_id(&self) -> String {
        std::fs::read_to_string(self.dir.boot_id()).unwrap_or_default().trim().to_string()
    }
    /// Its log so far.
    pub fn log(&self) -> Vec<LogEntry> {
        hostlog::parse(&std::fs::read_to_string(self.dir.log()).unwrap_or_default())
    }
    /// Its log entries with this event name.
    pub fn events(&self, event: &str) -> Vec<LogEntry> {
        self.log().into_iter().filter(|e| e.event == event).collect()
    }

    /// A path inside the host's own mount namespace, reached through its
    /// init's /proc root (no process needs to enter the host).
    fn inside(&self, path: &str) -> Option<PathBuf> {
        Some(PathBuf::from(format!("/proc/{}/root{path}", self.init_pid()?)))
    }
    fn read_link_inside(&self, path: &str) -> Option<PathBuf> {
        std::fs::read_link(self.inside(path)?).ok()
    }
    /// The host's /run/current-system target.
    pub fn current_system(&self) -> Option<PathBuf> {
        self.read_link_inside("/run/current-system")
    }
    /// The host's /run/booted-system target.
    pub fn booted_system(&self) -> Option<PathBuf> {
        self.read_link_inside("/run/booted-system")
    }
    /// The store path the host's system profile points to (its boot default).
    pub fn profile_system(&self) -> Option<PathBuf> {
        std::fs::canonicalize(self.dir.profiles().join("system")).ok()
    }
    /// Overrides what GET /health answers until the next activation or
    /// reboot: a status code such as `"503"`, or `"hang"`.
    pub fn set_health(&self, status: &str) -> Result<()> {
        let path = self.inside(layout::HEALTH_STATUS).context("host is not running")?;
        std::fs::write(path, format!("{status}\n")).context("writing the health status")
    }

    /// Sets what the next reboot does.
    pub fn set_mode(&self, mode: HostMode) -> Result<()> {
        let text = match mode {
            HostMode::Normal => "normal",
            HostMode::NeverReturns => "never-returns",
        };
        Ok(std::fs::write(self.dir.mode(), text)?)
    }
    /// Sets how long the next reboot stays down.
    pub fn set_boot_delay(&self, delay: Duration) -> Result<()> {
        Ok(std::fs::write(self.dir.boot_delay_ms(), delay.as_millis().to_string())?)
    }
    /// Takes the host's link down (cut off) or up again.
    pub fn set_link(&self, up: bool) -> Result<()> {
        let outer = format!("{}{}", netns::PREFIX, self.slot.n);
        netns::run("ip", &["link", "set", &outer, if up { "up" } else { "down" }])?;
        if up {
            // Taking a link down drops the routes through it; the host's
            // /32 route does not come back with the link by itself.
            let host = format!("{}/32", self.addr());
            let src = netns::CONTROLLER.to_string();
            netns::run("ip", &["route", "replace", &host, "dev", &outer, "src", &src])?;
        }
        Ok(())
    }

    /// Gives the host a new ssh host key, as a reinstall (or an impostor)
    /// would. sshd serves it from the next connection on (it re-reads its
    /// keys for each one). The fleet's known_hosts keeps the old one.
    pub fn replace_host_key(&self) -> Result<()> {
        let key = self.dir.ssh().join("ssh_host_ed25519_key");
        for path in [key.clone(), key.with_extension("pub")] {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        crate::ssh::keygen(&key, &self.name)?;
        Ok(())
    }

    /// Runs a command inside the host (its network, mount and UTS
    /// namespaces), as its root; argv only.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        let pid = self.init_pid().context("host is not running")?.to_string();
        Ok(Command::new("nsenter").args(["-t", &pid, "-m", "-u", "-n", "--"]).args(argv).output()?)
    }

    /// True when something accepts connections on `port` of the host now.
    pub fn port_open(&self, port: u16) -> bool {
        TcpStream::connect_timeout(&SocketAddr::from((self.addr(), port)), Duration::from_millis(500)).is_ok()
    }
    /// True when sshd accepts connections.
    pub fn ssh_up(&self) -> bool {
        self.port_open(22)
    }
    /// GET /health from the controller; None when there is no answer
    /// within `timeout`.
    pub fn http_health(&self, timeout: Duration) -> Option<u16> {
        let mut stream =
            TcpStream::connect_timeout(&SocketAddr::from((self.addr(), layout::HTTP_PORT)), timeout).ok()?;
        stream.set_read_timeout(Some(timeout)).ok()?;
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.split_whitespace().nth(1)?.parse().ok()
    }

    /// Polls `cond` every 20 ms until it holds or `timeout` passes.
    pub fn wait_for(&self, timeout: Duration, mut cond: impl FnMut(&TestHost) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

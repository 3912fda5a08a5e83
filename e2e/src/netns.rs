//! Network namespaces of test hosts, their addresses, and cleanup.
//!
//! Each host gets a slot N in 11..=250 and lives at 10.231.0.N in a network
//! namespace `labe-<pid>-<N>`, linked to the controller (root namespace) by
//! a veth pair: `labe<N>` outside with 10.231.0.1/32, `eth0` inside with
//! 10.231.0.N/32, and a /32 route each way. A slot is held by an flock on
//! /run/lab-e2e/slot-N.lock for the fleet's lifetime, so concurrent fleets
//! (threads or processes) never share an address, and a crashed run's slots
//! free themselves; what a crashed run left behind is removed by the next.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Prefix of every namespace, veth and temp dir the harness creates.
pub const PREFIX: &str = "labe";
/// The controller's address on every host link.
pub const CONTROLLER: Ipv4Addr = Ipv4Addr::new(10, 231, 0, 1);
const SLOTS: std::ops::RangeInclusive<u8> = 11..=250;
const LOCK_DIR: &str = "/run/lab-e2e";

/// Runs a command (argv only) and fails with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails clearly when the harness cannot work here.
pub fn preflight() -> Result<()> {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the lab end-to-end hosts need root (network and mount namespaces, sshd on port 22); run the e2e tests as root, as CI does");
    }
    run("ip", &["netns", "list"]).context("`ip netns` is unavailable (install iproute2)")?;
    for tool in ["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen", "/usr/bin/unshare", "/usr/bin/nsenter"] {
        if !Path::new(tool).exists() {
            bail!("{tool} is missing (./dev setup installs openssh-server, openssh-client, util-linux)");
        }
    }
    Ok(())
}

/// A held address slot.
pub struct Slot {
    /// N in 10.231.0.N.
    pub n: u8,
    _lock: File,
}

impl Slot {
    /// The host's address.
    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, 0, self.n)
    }
}

fn addresses_in_use() -> String {
    run("ip", &["-o", "-4", "addr", "show"]).unwrap_or_default()
}

/// Takes `count` free slots.
pub fn take_slots(count: usize) -> Result<Vec<Slot>> {
    std::fs::create_dir_all(LOCK_DIR)?;
    let in_use = addresses_in_use();
    let mut slots = Vec::new();
    for n in SLOTS {
        if slots.len() == count {
            break;
        }
        // Someone else's address (another harness) is not ours to take.
        if in_use.contains(&format!(" 10.231.0.{n}/")) {
            continue;
        }
        let lock = File::create(format!("{LOCK_DIR}/slot-{n}.lock"))?;
        if lock.try_lock().is_ok() {
            // A free slot whose veth still exists is left from a crash.
            let _ = run("ip", &["link", "del", &format!("{PREFIX}{n}")]);
            slots.push(Slot { n, _lock: lock });
        }
    }
    if slots.len() < count {
        bail!("only {} of {count} test-host addresses are free in 10.231.0.0/24", slots.len());
    }
    Ok(slots)
}

/// The namespace name of a slot owned by this process.
pub fn ns_name(slot: &Slot) -> String {
    format!("{PREFIX}-{}-{}", std::process::id(), slot.n)
}

/// Creates the namespace and its link to the controller.
pub fn create(ns: &str, slot: &Slot) -> Result<()> {
    let outer = format!("{PREFIX}{}", slot.n);
    let host = format!("{}/32", slot.addr());
    let controller = format!("{CONTROLLER}/32");
    run("ip", &["netns", "add", ns])?;
    run("ip", &["link", "add", &outer, "type", "veth", "peer", "name", "eth0", "netns", ns])?;
    run("ip", &["addr", "add", &controller, "dev", &outer])?;
    run("ip", &["link", "set", &outer, "up"])?;
    run("ip", &["route", "add", &host, "dev", &outer, "src", &CONTROLLER.to_string()])?;
    run("ip", &["-n", ns, "addr", "add", &host, "dev", "eth0"])?;
    run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
    run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    run("ip", &["-n", ns, "route", "add", &controller, "dev", "eth0"])?;
    Ok(())
}

/// Pids of every process inside a namespace.
pub fn pids(ns: &str) -> Vec<i32> {
    run("ip", &["netns", "pids", ns]).unwrap_or_default().split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// Kills everything in the namespace, then deletes it and its veth.
pub fn destroy(ns: &str, slot_n: u8) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = pids(ns);
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) of a process inside our own test namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = run("ip", &["netns", "del", ns]);
    let _ = run("ip", &["link", "del", &format!("{PREFIX}{slot_n}")]);
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces and temp dirs left by harness runs whose process is
/// gone (a test binary killed mid-run cannot run its Drop guards).
pub fn remove_stale() {
    for line in run("ip", &["netns", "list"]).unwrap_or_default().lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let mut parts = name.strip_prefix(&format!("{PREFIX}-")).unwrap_or("").split('-');
        let (Some(Ok(pid)), Some(Ok(n))) = (parts.next().map(str::parse::<u32>), parts.next().map(str::parse::<u8>))
        else {
            continue;
        };
        if !pid_alive(pid) {
            destroy(name, n);
        }
    }
    let Ok(entries) = std::fs::read_dir("/tmp") else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(&format!("{PREFIX}-"))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !pid_alive(p)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

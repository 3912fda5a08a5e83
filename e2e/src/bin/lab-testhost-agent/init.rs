//! The host's init: private mounts, boot, service supervision, reboot.
//!
//! Runs as `ip netns exec NS unshare --mount --uts --propagation private
//! lab-testhost-agent init HOST_DIR`, so every mount it makes is the host's
//! own and vanishes with its last process.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::symlink;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab_e2e::layout;

use crate::{procs, Host};

/// Services the init supervises, by unit name.
const SERVICES: [&str; 2] = ["sshd", "lab-test-agent"];

/// Longest a boot activation may take before the boot goes on without it.
const ACTIVATION_LIMIT: Duration = Duration::from_secs(60);
/// Longest a host stays down in `never-returns` mode (the harness tears it
/// down long before).
const NEVER_RETURNS_LIMIT: Duration = Duration::from_secs(3600);

struct Init {
    host: Host,
    services: BTreeMap<&'static str, Child>,
}

/// Sets the host up, boots it and serves its control socket until killed.
pub fn run(host: Host) -> i32 {
    if let Err(e) = setup(&host) {
        eprintln!("lab-testhost-agent init: {e}");
        host.log("init-failed", &[("error", &e)]);
        return 1;
    }
    let socket = host.dir.init_socket();
    let _ = std::fs::remove_file(&socket);
    let listener = match UnixListener::bind(&socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lab-testhost-agent init: bind {}: {e}", socket.display());
            return 1;
        }
    };
    let _ = std::fs::write(host.dir.init_pid(), std::process::id().to_string());
    let mut init = Init { host, services: BTreeMap::new() };
    init.boot();
    for stream in listener.incoming().flatten() {
        init.serve(stream);
    }
    0
}

fn mount(args: &[&str]) -> Result<(), String> {
    let out = Command::new("mount").args(args).output().map_err(|e| format!("mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("mount {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str().ok_or_else(|| format!("not UTF-8: {}", path.display()))
}

/// The host's private view: its own /run, system profiles, boot id and
/// stand-in commands, and its own host name.
fn setup(host: &Host) -> Result<(), String> {
    let dir = &host.dir;
    mount(&["-t", "tmpfs", "-o", "mode=0755,size=64m", "lab-test-run", "/run"])?;
    mount(&["--bind", path_str(&dir.profiles())?, "/nix/var/nix/profiles"])?;
    mount(&["--bind", path_str(&dir.boot_id())?, "/proc/sys/kernel/random/boot_id"])?;
    mount(&["--bind", path_str(&dir.bin())?, "/usr/local/bin"])?;
    // ssh sessions run root's login shell in root's home, as the passwd
    // entry says; Debian's bash under sshd then reads /etc/bash.bashrc and
    // ~/.bashrc: the controller's, whose tools (pyenv rehash) take locks that
    // a host killed mid-session would leave behind, stalling every later
    // session of every fleet. A host has its own passwd (root's home is the
    // host's own, empty directory; its shell stays bash, as on NixOS) and an
    // empty system bashrc, so nothing of the controller's user runs in it.
    let home = dir.root.join("home");
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let passwd = dir.root.join("passwd");
    std::fs::write(&passwd, host_passwd(&home)?).map_err(|e| format!("{}: {e}", passwd.display()))?;
    mount(&["--bind", path_str(&passwd)?, "/etc/passwd"])?;
    let system_rc = Path::new("/etc/bash.bashrc");
    if system_rc.exists() {
        let own = dir.root.join("bash.bashrc");
        std::fs::write(&own, "").map_err(|e| format!("{}: {e}", own.display()))?;
        mount(&["--bind", path_str(&own)?, "/etc/bash.bashrc"])?;
    }
    std::fs::write("/proc/sys/kernel/hostname", &host.name).map_err(|e| format!("set hostname: {e}"))?;
    Ok(())
}

/// The controller's /etc/passwd with root's home set to `home` and its shell
/// to bash (NixOS's) where there is one.
fn host_passwd(home: &Path) -> Result<String, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let shell = if Path::new("/bin/bash").exists() { "/bin/bash" } else { "/bin/sh" };
    let mut out = String::new();
    for line in passwd.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() == 7 && fields[2] == "0" {
            fields[5] = path_str(home)?;
            fields[6] = shell;
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    Ok(out)
}

fn new_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("{:032x}", lab_e2e::hostlog::now_us()))
}

/// Replaces a symlink atomically, as `ln -sfn` would not.
fn set_link(link: &Path, target: &Path) -> std::io::Result<()> {
    let tmp = link.with_extension("lab-tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

fn wipe_run() {
    if let Ok(entries) = std::fs::read_dir("/run") {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() && !path.is_symlink() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

impl Init {
    /// Boots the default generation: the system profile's current target
    /// becomes /run/booted-system and /run/current-system, its activation
    /// runs, then the services start.
    fn boot(&mut self) {
        wipe_run();
        for d in [layout::RUN_STATE, layout::UNITS, "/run/sshd"] {
            let _ = std::fs::create_dir_all(d);
        }
        let boot_id = new_boot_id();
        // Rewritten in place: the bind mount over /proc follows the inode.
        if let Err(e) = std::fs::write(self.host.dir.boot_id(), format!("{boot_id}\n")) {
            eprintln!("init: boot id: {e}");
        }
        let system =
            std::fs::canonicalize(layout::SYSTEM_PROFILE).unwrap_or_else(|_| PathBuf::from(layout::SYSTEM_PROFILE));
        let system_str = system.display().to_string();
        self.host.log("boot", &[("boot_id", &boot_id), ("system", &system_str)]);
        let _ = set_link(Path::new("/run/booted-system"), &system);
        let _ = set_link(Path::new("/run/current-system"), &system);
        self.activate(&system);
        for service in SERVICES {
            let _ = self.start(service);
        }
        self.host.log("boot-complete", &[("boot_id", &boot_id), ("system", &system_str)]);
    }

    fn activate(&self, system: &Path) {
        let script = system.join("activate");
        // The activation knows it runs at boot and leaves services to init.
        let child = Command::new(&script)
            .env_clear()
            .env("PATH", layout::UNIT_PATH)
            .env("LAB_TEST_BOOT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.stderr_file("activation"))
            .spawn();
        let Ok(mut child) = child else {
            self.host.log("boot-activation-failed", &[("system", &system.display().to_string())]);
            return;
        };
        let deadline = Instant::now() + ACTIVATION_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn stderr_file(&self, name: &str) -> Stdio {
        match OpenOptions::new().create(true).append(true).open(self.host.dir.service_log(name)) {
            Ok(f) => f.into(),
            Err(_) => Stdio::null(),
        }
    }

    fn command_for(&self, service: &str) -> Command {
        let mut cmd = if service == "sshd" {
            let mut c = Command::new("/usr/sbin/sshd");
            c.arg("-D").arg("-e").arg("-f").arg(self.host.dir.sshd_config());
            c
        } else {
            let mut c = Command::new(std::env::current_exe().unwrap_or_else(|_| "lab-testhost-agent".into()));
            c.arg("serve");
            c
        };
        cmd.env_clear()
            .env("PATH", layout::UNIT_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.stderr_file(service));
        cmd
    }

    fn is_active(&mut self, service: &str) -> bool {
        match self.services.get_mut(service) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn start(&mut self, service: &'static str) -> Result<(), String> {
        if self.is_active(service) {
            return Ok(());
        }
        if service == "sshd" && Path::new(layout::SSHD_BROKEN).exists() {
            self.host.log("service-failed", &[("unit", service), ("reason", "configuration broken by activation")]);
            return Err("Job for sshd.service failed (the running configuration broke sshd)".into());
        }
        let child = self.command_for(service).spawn().map_err(|e| format!("{service}: {e}"))?;
        self.host.log("service-start", &[("unit", service), ("pid", &child.id().to_string())]);
        self.services.insert(service, child);
        Ok(())
    }

    fn stop(&mut self, service: &str) {
        if let Some(mut child) = self.services.remove(service) {
            let _ = child.kill();
            let _ = child.wait();
            self.host.log("service-stop", &[("unit", service)]);
        }
    }

    fn reboot(&mut self) {
        self.host.log("reboot-start", &[]);
        // A real shutdown takes a moment; let the caller's command return.
        std::thread::sleep(Duration::from_millis(50));
        procs::kill_host_processes();
        for (_, mut child) in std::mem::take(&mut self.services) {
            let _ = child.wait();
        }
        self.host.log("down", &[]);
        let delay_ms: u64 = read_conf_value(&self.host.dir.boot_delay_ms()).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let mode = std::fs::read_to_string(self.host.dir.mode()).unwrap_or_default();
        if mode.trim() == "never-returns" {
            self.host.log("never-returns", &[]);
            std::thread::sleep(NEVER_RETURNS_LIMIT);
        }
        self.boot();
    }

    fn serve(&mut self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        let Ok(mut writer) = stream.try_clone() else { return };
        if BufReader::new(stream).read_line(&mut line).is_err() {
            return;
        }
        let mut words = line.split_whitespace();
        let (verb, unit) = (words.next().unwrap_or(""), words.next().map(unit_name));
        let answer = match (verb, unit) {
            ("reboot", _) => {
                let _ = writer.write_all(b"ok rebooting\n");
                drop(writer);
                self.reboot();
                return;
            }
            ("is-active", Some(Some(u))) => {
                if self.is_active(u) {
                    "ok active".to_string()
                } else {
                    "ok inactive".to_string()
                }
            }
            ("start", Some(Some(u))) => self.start(u).map(|_| "ok".to_string()).unwrap_or_else(|e| format!("err {e}")),
            ("stop", Some(Some(u))) => {
                self.stop(u);
                "ok".into()
            }
            ("restart", Some(Some(u))) => {
                self.stop(u);
                self.start(u).map(|_| "ok".to_string()).unwrap_or_else(|e| format!("err {e}"))
            }
            (_, Some(None)) => "err unknown unit".into(),
            _ => format!("err bad request {:?}", line.trim()),
        };
        let _ = writer.write_all(format!("{answer}\n").as_bytes());
    }
}

/// The supervised service a unit name means (`ssh`, `sshd.service`, …).
fn unit_name(name: &str) -> Option<&'static str> {
    match name.strip_suffix(".service").unwrap_or(name) {
        "sshd" | "ssh" => Some("sshd"),
        "lab-test-agent" => Some("lab-test-agent"),
        _ => None,
    }
}

/// True when `name` is a service this init supervises.
pub fn is_service(name: &str) -> bool {
    unit_name(name).is_some()
}

fn read_conf_value(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

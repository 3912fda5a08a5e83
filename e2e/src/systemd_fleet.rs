//! [`SystemdFleet`]: systemd test hosts booted together, their NixOS-like
//! systems (real store paths built by nix, with the model of
//! switch-to-configuration in `e2e/nix/switch-to-configuration.sh`), and
//! the fleet file lab reads.
//!
//! A host starts with generation 1 installed as NixOS installs it: copied
//! into the host's own store, the system profile pointing at it, the boot
//! default set, booted and current. Its app listens on port 8080 (a socket
//! unit of the generation); its health check is a tcp check of that port,
//! run on the host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lab_core::metadata::Machine;
use serde_json::json;

use crate::netns;
use crate::nixsys::{self, FleetEntry, SystemSpec};
use crate::spec::HostSpec;
use crate::ssh::Client;
use crate::systemd_host::{preflight, rootfs, SystemdHost, BOOT_LIMIT};

/// Longest any one command of the harness may take (stops a hang).
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// Hosts booted together, with the controller's ssh client material.
pub struct SystemdFleet {
    dir: PathBuf,
    client: Client,
    hosts: Vec<SystemdHost>,
    entries: BTreeMap<String, FleetEntry>,
    builds: u32,
}

impl SystemdFleet {
    /// Boots one bare host per name (no NixOS system installed), in
    /// parallel, and waits until each answers over ssh with its own key.
    pub fn boot(names: &[&str]) -> Result<SystemdFleet> {
        let mut fleet = Self::prepare(names)?;
        fleet.start_hosts()?;
        Ok(fleet)
    }

    /// Boots a host per spec and installs generation 1 of its system.
    /// Each host's metadata is the spec's, with its address as `targetHost`
    /// and a tcp check of its app (port 8080, run on the host).
    pub fn start(specs: Vec<HostSpec>) -> Result<SystemdFleet> {
        let names: Vec<&str> = specs.iter().map(|h| h.name.as_str()).collect();
        let mut fleet = Self::prepare(&names)?;
        for (h, host) in specs.iter().zip(&fleet.hosts) {
            let mut metadata = h.metadata.clone();
            metadata.target_host = Some(host.addr().to_string());
            metadata.target_user = "root".into();
            let machine = Machine { name: h.name.clone(), hostname: Some(h.name.clone()), services: vec![], metadata };
            let mut value = machine.to_json_value();
            value["healthChecks"] =
                json!([{ "type": "tcp", "port": 8080, "timeout": 2, "interval": 1, "failureThreshold": 3 }]);
            fleet
                .entries
                .insert(h.name.clone(), FleetEntry { generation: 1, system: h.system.clone(), metadata: value });
        }
        std::fs::create_dir_all(fleet.nix_dir())?;
        nixsys::write_static_with(&fleet.nix_dir(), nixsys::SYSTEMD_BUILDER)?;
        let systems = fleet.build()?;
        fleet.start_hosts()?;
        for (name, system) in &systems {
            fleet.install(name, system)?;
        }
        Ok(fleet)
    }

    fn prepare(names: &[&str]) -> Result<SystemdFleet> {
        preflight()?;
        netns::remove_stale();
        let dir = std::env::temp_dir().join(format!("{}-{}-sd", netns::PREFIX, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let client = Client::new(&dir.join("client"))?;
        let slots = netns::take_slots(names.len())?;
        let mut fleet =
            SystemdFleet { dir: dir.clone(), client, hosts: Vec::new(), entries: BTreeMap::new(), builds: 0 };
        for (name, slot) in names.iter().zip(slots) {
            let host_dir = dir.join(format!("host-{}", slot.n));
            let host = SystemdHost::prepare(name, slot, &host_dir, &fleet.client)?;
            fleet.hosts.push(host);
        }
        let entries: Vec<(String, String, String, Option<String>)> = fleet
            .hosts
            .iter()
            .map(|h| (h.name().to_string(), h.addr().to_string(), h.host_key.clone(), None))
            .collect();
        fleet.client.write(&entries)?;
        Ok(fleet)
    }

    fn start_hosts(&mut self) -> Result<()> {
        let lower = rootfs()?;
        for host in &mut self.hosts {
            host.start(&lower)?;
        }
        for host in &self.hosts {
            self.wait_for_ssh(host.name(), BOOT_LIMIT)?;
        }
        Ok(())
    }

    fn nix_dir(&self) -> PathBuf {
        self.dir.join("fleet")
    }

    fn build(&mut self) -> Result<BTreeMap<String, PathBuf>> {
        self.builds += 1;
        nixsys::build(&self.nix_dir(), &self.entries, &format!("result-{}", self.builds))
    }

    /// Installs `system` as NixOS's installer leaves a machine: in the
    /// host's store, the profile's generation, the boot default, booted and
    /// current.
    fn install(&self, host: &str, system: &Path) -> Result<()> {
        self.copy(host, system)?;
        let system = system.to_str().context("store path is not UTF-8")?;
        self.run(host, &["nix-env", "-p", "/nix/var/nix/profiles/system", "--set", system])?;
        self.run(host, &[&format!("{system}/bin/switch-to-configuration"), "switch"])?;
        self.run(host, &["ln", "-sfn", system, "/run/booted-system"])?;
        Ok(())
    }

    /// Copies a store path (with its closure) into `host`'s store.
    pub fn copy(&self, host: &str, path: &Path) -> Result<()> {
        let mut cmd = self.command("nix");
        cmd.args(["copy", "--to", &format!("ssh://{host}")]).arg(path);
        let out = crate::output_within(&mut cmd, COMMAND_LIMIT)?;
        if !out.status.success() {
            bail!("nix copy to {host}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Builds generation `generation` with these hosts' systems changed;
    /// the fleet file then describes it. Returns every host's system.
    pub fn write_generation(
        &mut self,
        generation: u32,
        systems: &[(&str, SystemSpec)],
    ) -> Result<BTreeMap<String, PathBuf>> {
        nixsys::set_generation(&mut self.entries, generation, systems)?;
        self.build()
    }

    /// The fleet file for `lab --file`.
    pub fn fleet_file(&self) -> PathBuf {
        self.nix_dir().join("fleet.nix")
    }

    /// A command with the fleet's environment: `NIX_SSHOPTS` naming the
    /// fleet's ssh config, nix's experimental features, and a cache
    /// directory of the fleet's own.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NIX_SSHOPTS", format!("-F {}", self.client.config.display()))
            .env("NIX_CONFIG", "experimental-features = nix-command flakes")
            .env("XDG_CACHE_HOME", self.dir.join("cache"));
        cmd
    }

    /// `lab --file FLEET ARGS… --ssh-config CONFIG --state-dir STATE`.
    pub fn lab(&self, state: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command(crate::lab_binary());
        cmd.arg("--file").arg(self.fleet_file()).args(args);
        cmd.arg("--ssh-config").arg(&self.client.config).arg("--state-dir").arg(state);
        cmd
    }

    /// The ssh client config naming every host (`ssh -F`, `lab --ssh-config`).
    pub fn ssh_config(&self) -> &Path {
        &self.client.config
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> &SystemdHost {
        self.hosts.iter().find(|h| h.name() == name).unwrap_or_else(|| panic!("no host {name}"))
    }

    /// `ssh -F <config> <host> ARGS…` (argv; the remote shell joins them).
    pub fn ssh(&self, host: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F").arg(&self.client.config).arg(host).args(args).stdin(Stdio::null());
        cmd
    }

    /// Runs `ARGS…` on `host`; its stdout when it exits 0, else an error
    /// with its stderr. Bounded in time.
    pub fn run(&self, host: &str, args: &[&str]) -> Result<String> {
        let out = crate::output_within(&mut self.ssh(host, args), COMMAND_LIMIT)?;
        if !out.status.success() {
            bail!("{host}: {args:?} exited {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Makes `user` lab's target user on `host`: a login with the
    /// controller's key, a sudo rule (NOPASSWD, or asking `password`), and
    /// a nix daemon that trusts it (a non-root user copies through it, as
    /// on NixOS with `nix.settings.trusted-users`). Takes effect in the
    /// fleet file at the next [`write_generation`](Self::write_generation).
    pub fn make_target_user(&mut self, host: &str, user: &str, password: Option<&str>) -> Result<()> {
        let rule = match password {
            None => format!("{user} ALL=(ALL) NOPASSWD: ALL\n"),
            Some(_) => format!("{user} ALL=(ALL) ALL\n"),
        };
        let script = format!(
            "set -e; useradd -m -s /bin/sh {user}; mkdir -p /home/{user}/.ssh; \
             cp /root/.ssh/authorized_keys /home/{user}/.ssh/; chown -R {user} /home/{user}/.ssh; \
             echo {user}:{pw} | chpasswd; printf \"{rule}\" > /etc/sudoers.d/lab-deploy; chmod 440 /etc/sudoers.d/lab-deploy; \
             echo \"trusted-users = root {user}\" >> /etc/nix/nix.conf; \
             systemd-run --unit=e2e-nix-daemon --description=e2e-nix-daemon /usr/bin/nix-daemon; \
             for i in $(seq 100); do [ -S /nix/var/nix/daemon-socket/socket ] && break; sleep 0.1; done",
            pw = password.unwrap_or("unused-password-e2e"),
        );
        self.run(host, &["sh", "-c", &format!("'{script}'")])?;
        let entry = self.entries.get_mut(host).with_context(|| format!("no test host {host}"))?;
        entry.metadata["targetUser"] = json!(user);
        Ok(())
    }

    /// Writes `content` to `path` on `host` (over ssh, through its
    /// standard input).
    pub fn write_file(&self, host: &str, path: &str, content: &str) -> Result<()> {
        let local = self.dir.join("upload");
        std::fs::write(&local, content)?;
        let mut cmd = self.ssh(host, &["sh", "-c", &format!("'cat > {path}'")]);
        cmd.stdin(std::fs::File::open(&local)?).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn()?;
        let deadline = Instant::now() + COMMAND_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{host}: writing {path} did not finish within {COMMAND_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !status.success() {
            bail!("{host}: writing {path} failed ({status})");
        }
        Ok(())
    }

    /// The host's boot id, read over ssh.
    pub fn boot_id(&self, host: &str) -> Result<String> {
        Ok(self.run(host, &["cat", "/proc/sys/kernel/random/boot_id"])?.trim().to_string())
    }

    /// Where the host's current system, booted system, system profile and
    /// boot default point (empty when missing), read over ssh.
    pub fn links(&self, host: &str) -> Result<Links> {
        let script = "for l in /run/current-system /run/booted-system /nix/var/nix/profiles/system /boot/lab-default; do readlink -f \"$l\" || echo; done";
        let out = self.run(host, &["sh", "-c", &format!("'{script}'")])?;
        let mut lines = out.lines().map(|l| PathBuf::from(l.trim()));
        let mut next = || lines.next().unwrap_or_default();
        Ok(Links { current: next(), booted: next(), profile: next(), boot_default: next() })
    }

    /// The lab-* timers still armed on the host: loaded and active (a
    /// stopped transient timer may stay loaded a while, inactive, and can
    /// no longer fire).
    pub fn lab_timers(&self, host: &str) -> Result<Vec<String>> {
        let out =
            self.run(host, &["systemctl", "list-units", "--all", "--type=timer", "--no-legend", "--plain", "'lab-*'"])?;
        // UNIT LOAD ACTIVE SUB DESCRIPTION…
        Ok(out
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 3 && f[2] != "inactive")
            .map(|f| format!("{} ({} {})", f[0], f[2], f.get(3).unwrap_or(&"")))
            .collect())
    }

    /// Waits until `host` runs a command over ssh, or fails after `limit`
    /// with its console's last lines.
    pub fn wait_for_ssh(&self, host: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let mut cmd = self.ssh(host, &["true"]);
            if crate::output_within(&mut cmd, Duration::from_secs(30)).is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let console = self.host(host).console();
                let tail: Vec<&str> = console.lines().rev().take(20).collect();
                bail!("{host} did not answer over ssh within {limit:?}; console:\n{}", tail.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `host` is back with a boot id other than `old`.
    pub fn wait_for_new_boot(&self, host: &str, old: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(id) = self.boot_id(host) {
                if id != old {
                    return Ok(id);
                }
            }
            if Instant::now() > deadline {
                bail!("{host} did not come back with a new boot id within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops every host and removes what the fleet made.
    pub fn teardown(mut self) {
        self.hosts.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a host's system links point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// `/run/current-system`.
    pub current: PathBuf,
    /// `/run/booted-system`.
    pub booted: PathBuf,
    /// The system profile.
    pub profile: PathBuf,
    /// The boot default (`/boot/lab-default`, the model's boot loader entry).
    pub boot_default: PathBuf,
}

impl Drop for SystemdFleet {
    fn drop(&mut self) {
        self.hosts.clear();
        if std::env::var_os("LAB_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

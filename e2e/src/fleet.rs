//! [`TestFleet`]: start, use and tear down a fleet of test hosts.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use lab_core::metadata::Machine;

use crate::host::TestHost;
use crate::hostlog::LogEntry;
use crate::layout::HostDir;
use crate::netns;
use crate::nixsys::{self, FleetEntry, SystemSpec};
use crate::spec::{FleetSpec, HostMode, HostSpec};
use crate::ssh;

static NEXT_FLEET: AtomicU32 = AtomicU32::new(0);
/// How long a host gets to boot at start.
const START_LIMIT: Duration = Duration::from_secs(15);

/// A running fleet of test hosts. Dropping it tears everything down (also
/// when the test panics); [`TestFleet::teardown`] does the same and checks
/// that nothing is left.
pub struct TestFleet {
    dir: PathBuf,
    client: ssh::Client,
    hosts: Vec<TestHost>,
    entries: BTreeMap<String, FleetEntry>,
    builds: u32,
    down: bool,
}

fn agent_path(spec: &FleetSpec) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LAB_TESTHOST_AGENT").map(PathBuf::from).or_else(|| spec.agent.clone()) {
        return Ok(p);
    }
    // Test binaries live in target/<profile>/deps, bins in target/<profile>.
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join("lab-testhost-agent");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "lab-testhost-agent not found next to {}; build it (cargo build -p lab-e2e) or set LAB_TESTHOST_AGENT",
        exe.display()
    )
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

fn write_exec(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Prepares a host's directory: config, keys, stand-ins, an empty profile.
/// Returns its host public key.
fn prepare_host(dir: &HostDir, spec: &HostSpec, addr: &str, agent: &Path, client_public: &str) -> Result<String> {
    std::fs::create_dir_all(dir.profiles())?;
    std::fs::create_dir_all(dir.bin())?;
    std::fs::create_dir_all(dir.ssh())?;
    std::fs::write(dir.conf(), format!("name={}\naddr={addr}\n", spec.name))?;
    std::fs::write(dir.boot_id(), "00000000-0000-0000-0000-000000000000\n")?;
    std::fs::write(dir.log(), "")?;
    let mode = if spec.mode == HostMode::NeverReturns { "never-returns" } else { "normal" };
    std::fs::write(dir.mode(), mode)?;
    std::fs::write(dir.boot_delay_ms(), spec.boot_delay.as_millis().to_string())?;
    let (agent, root) = (agent.display(), dir.root.display());
    for tool in ["reboot", "systemctl", "systemd-run"] {
        write_exec(&dir.bin().join(tool), &format!("#!/bin/sh\n# lab-e2e stand-in for {tool}: see lab-testhost-agent\nexec {agent} tool {root} {tool} \"$@\"\n"))?;
    }
    write_exec(&dir.bin().join("lab-test-host"), &format!("#!/bin/sh\nexec {agent} tool {root} \"$@\"\n"))?;
    let host_key = ssh::keygen(&dir.ssh().join("ssh_host_ed25519_key"), &spec.name)?;
    std::fs::write(dir.ssh().join("authorized_keys"), format!("{client_public}\n"))?;
    std::fs::write(dir.sshd_config(), ssh::sshd_config(addr, &dir.ssh()))?;
    Ok(host_key)
}

/// Makes `system` generation 1 of the host's system profile, as installing
/// NixOS does (the same links `nix-env --set` makes).
fn install_profile(dir: &HostDir, system: &Path) -> Result<()> {
    symlink(system, dir.profiles().join("system-1-link"))?;
    symlink("system-1-link", dir.profiles().join("system"))?;
    Ok(())
}

impl TestFleet {
    /// Starts the fleet: builds generation 1 of every host with nix, creates
    /// the namespaces, boots every host in parallel and waits until each
    /// one's sshd and health endpoint answer.
    pub fn start(spec: FleetSpec) -> Result<TestFleet> {
        netns::preflight()?;
        netns::remove_stale();
        let mut names = std::collections::BTreeSet::new();
        for h in &spec.hosts {
            if !valid_name(&h.name) || !names.insert(h.name.clone()) {
                bail!("bad or duplicate host name {:?} (lowercase letters, digits and '-', up to 40)", h.name);
            }
        }
        let agent = agent_path(&spec)?;
        let dir = PathBuf::from(format!(
            "/tmp/{}-{}-{}",
            netns::PREFIX,
            std::process::id(),
            NEXT_FLEET.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nix"))?;
        let client = ssh::Client::new(&dir.join("ssh"))?;
        let mut fleet = TestFleet { dir, client, hosts: Vec::new(), entries: BTreeMap::new(), builds: 0, down: false };
        let slots = netns::take_slots(spec.hosts.len())?;

        // Per-host files and keys, in parallel (ssh-keygen dominates).
        let prepared: Vec<Result<String>> = std::thread::scope(|s| {
            let jobs: Vec<_> = spec
                .hosts
                .iter()
                .zip(&slots)
                .map(|(h, slot)| {
                    let dir = HostDir::new(fleet.dir.join("h").join(&h.name));
                    let (agent, public) = (&agent, &fleet.client.public);
                    s.spawn(move || prepare_host(&dir, h, &slot.addr().to_string(), agent, public))
                })
                .collect();
            jobs.into_iter()
                .map(|j| j.join().unwrap_or_else(|_| Err(anyhow::anyhow!("host preparation panicked"))))
                .collect()
        });
        let mut known = Vec::new();
        for ((h, slot), key) in spec.hosts.iter().zip(&slots).zip(prepared) {
            let proxy =
                (!h.latency.is_zero()).then(|| format!("{} delay {} %h %p", agent.display(), h.latency.as_millis()));
            known.push((h.name.clone(), slot.addr().to_string(), key?, proxy));
            let mut metadata = h.metadata.clone();
            metadata.target_host = Some(slot.addr().to_string());
            let machine = Machine {
                name: h.name.clone(),
                hostname: Some(h.name.clone()),
                services: h.services.clone(),
                metadata,
            };
            fleet.entries.insert(
                h.name.clone(),
                FleetEntry { generation: 1, system: h.system.clone(), metadata: machine.to_json_value() },
            );
        }
        fleet.client.write(&known)?;
        nixsys::write_static(&fleet.nix_dir())?;
        let systems = fleet.build()?;

        for (h, slot) in spec.hosts.iter().zip(slots) {
            let dir = HostDir::new(fleet.dir.join("h").join(&h.name));
            install_profile(&dir, &systems[&h.name])?;
            let ns = netns::ns_name(&slot);
            // Registered before anything is created, so a failure below is
            // still cleaned up by Drop.
            fleet.hosts.push(TestHost { name: h.name.clone(), slot, ns: ns.clone(), dir, init: None });
            let host = fleet.hosts.last_mut().context("just pushed")?;
            netns::create(&ns, &host.slot)?;
            host.init = Some(spawn_init(&ns, &agent, &host.dir)?);
        }
        let deadline = Instant::now() + START_LIMIT;
        for host in &fleet.hosts {
            let left = deadline.saturating_duration_since(Instant::now());
            let up = host.wait_for(left, |h| {
                !h.events("boot-complete").is_empty() && h.ssh_up() && h.port_open(crate::layout::HTTP_PORT)
            });
            if !up {
                let stderr = std::fs::read_to_string(host.dir.service_log("init")).unwrap_or_default();
                bail!("test host {} did not boot within {START_LIMIT:?}; init said: {stderr}", host.name);
            }
        }
        Ok(fleet)
    }

    fn nix_dir(&self) -> PathBuf {
        self.dir.join("nix")
    }

    fn build(&mut self) -> Result<BTreeMap<String, PathBuf>> {
        self.builds += 1;
        nixsys::build(&self.nix_dir(), &self.entries, &format!("result-{}", self.builds))
    }

    /// The fleet's temp directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The fleet file for `lab --file`; it always describes the newest
    /// generation written.
    pub fn fleet_file(&self) -> PathBuf {
        self.nix_dir().join("fleet.nix")
    }
    /// The ssh client config (`ssh -F`, `lab --ssh-config`).
    pub fn ssh_config(&self) -> &Path {
        &self.client.config
    }
    /// The known_hosts file holding every host's key.
    pub fn known_hosts(&self) -> &Path {
        &self.client.known_hosts
    }
    /// `NIX_SSHOPTS` for `nix copy --to ssh://root@ADDR`.
    pub fn nix_sshopts(&self) -> String {
        format!("-F {}", self.client.config.display())
    }
    /// A command with the fleet's environment: `NIX_SSHOPTS`, the nix
    /// experimental features `nix copy` and `nix build` need, and a cache
    /// directory of the fleet's own.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NIX_SSHOPTS", self.nix_sshopts()).env("NIX_CONFIG", "experimental-features = nix-command flakes");
        // lab's evaluation cache stays with the fleet, out of root's home.
        cmd.env("XDG_CACHE_HOME", self.dir.join("cache"));
        cmd
    }
    /// `ssh -F CONFIG root@ADDR`, ready for the remote command's words
    /// (ssh joins them with spaces for the remote shell).
    pub fn ssh(&self, host: &str) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(&self.client.config)
            .arg(format!("root@{}", self.host(host).addr()))
            .arg("--")
            .stdin(Stdio::null());
        cmd
    }

    /// Every host.
    pub fn hosts(&self) -> &[TestHost] {
        &self.hosts
    }
    /// The host called `name`; panics on a name the test did not start.
    pub fn host(&self, name: &str) -> &TestHost {
        self.hosts.iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no test host {name}"))
    }
    /// The newest generation number written for a host.
    pub fn generation_count(&self, name: &str) -> Option<u32> {
        self.entries.get(name).map(|e| e.generation)
    }

    /// Writes generation `generation` for the given hosts (the others keep
    /// theirs) into the fleet file and builds every host; returns each
    /// host's toplevel store path. Nothing changes on the hosts.
    pub fn write_generation(
        &mut self,
        generation: u32,
        systems: &[(&str, SystemSpec)],
    ) -> Result<BTreeMap<String, PathBuf>> {
        nixsys::set_generation(&mut self.entries, generation, systems)?;
        self.build()
    }

    /// Every host's log, merged in time order.
    pub fn merged_log(&self) -> Vec<LogEntry> {
        let mut all: Vec<LogEntry> = self.hosts.iter().flat_map(|h| h.log()).collect();
        all.sort_by_key(|e| e.at_us);
        all
    }

    fn shutdown(&mut self) {
        if self.down {
            return;
        }
        self.down = true;
        for host in &mut self.hosts {
            netns::destroy(&host.ns, host.slot.n);
            if let Some(mut init) = host.init.take() {
                let _ = init.kill();
                let _ = init.wait();
            }
        }
        if std::env::var_os("LAB_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab-e2e: kept {}", self.dir.display());
        }
    }

    /// Tears the fleet down and checks nothing is left: no namespace, veth,
    /// process or mount of this fleet.
    pub fn teardown(mut self) -> Result<()> {
        self.shutdown();
        let names: Vec<(String, u8)> = self.hosts.iter().map(|h| (h.ns.clone(), h.slot.n)).collect();
        leftovers(&self.dir, &names)
    }
}

fn spawn_init(ns: &str, agent: &Path, dir: &HostDir) -> Result<std::process::Child> {
    let stderr = File::create(dir.service_log("init"))?;
    Command::new("ip")
        .args(["netns", "exec", ns, "unshare", "--mount", "--uts", "--propagation", "private", "--"])
        .arg(agent)
        .arg("init")
        .arg(&dir.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .context("starting the host's init")
}

/// What is left of a fleet that should be gone.
pub fn leftovers(dir: &Path, hosts: &[(String, u8)]) -> Result<()> {
    let mut left = Vec::new();
    let namespaces = netns::run("ip", &["netns", "list"]).unwrap_or_default();
    let links = netns::run("ip", &["-o", "link", "show"]).unwrap_or_default();
    for (ns, n) in hosts {
        if namespaces.split_whitespace().any(|w| w == ns) {
            left.push(format!("namespace {ns}"));
        }
        if links.contains(&format!(" {}{n}@", netns::PREFIX)) || links.contains(&format!(" {}{n}:", netns::PREFIX)) {
            left.push(format!("veth {}{n}", netns::PREFIX));
        }
    }
    let needle = dir.display().to_string();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            left.push(format!("process {pid}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(mounts.lines().filter(|l| l.contains(&needle)).map(|l| format!("mount {l}")));
    if dir.exists() && std::env::var_os("LAB_E2E_KEEP").is_none() {
        left.push(format!("directory {}", dir.display()));
    }
    if left.is_empty() {
        Ok(())
    } else {
        bail!("teardown left: {left:#?}")
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        self.shutdown();
    }
}

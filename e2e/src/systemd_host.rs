//! Test hosts that boot a real systemd.
//!
//! Each [`SystemdHost`] is a container (`systemd-nspawn --boot`) whose PID 1
//! is Debian's systemd, in its own network namespace at 10.231.0.N (the
//! slots of [`crate::netns`]), with its own root file system: an overlay of
//! the shared root file system that `e2e/rootfs.sh` builds once per machine,
//! so each host has its own /etc, ssh host key, `/nix` store and boot id.
//! `systemctl`, `systemd-run`, timers, logind, inhibitors and `reboot` are
//! systemd's own; a reboot ends nspawn with exit 133 and the host's boot loop
//! starts it again with a new boot id.
//!
//! What the machine here needs, learned the hard way:
//! - no systemd or D-Bus on the controller: `--register=no --keep-unit`;
//! - nspawn refuses to clean `/run/systemd/nspawn` on a disk-backed /run:
//!   each boot loop has a tmpfs there, in its own mount namespace, which
//!   also holds the overlay mount, so both vanish with the loop;
//! - hybrid cgroups: each host gets its own cgroup directory in every
//!   hierarchy before nspawn starts, or units of different hosts collide;
//! - `ip netns exec` remounts /sys: nspawn joins the namespace itself
//!   (`--network-namespace-path`);
//! - cleanup goes by stored pid and namespace, never by machine name.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::{self, Slot};
use crate::ssh::{keygen, Client};

/// How long a host may take to boot to sshd (stops a hang; a boot takes
/// about a second on an idle machine).
pub(crate) const BOOT_LIMIT: Duration = Duration::from_secs(120);

/// The boot loop: joins the host's cgroups, mounts its private /run/systemd/nspawn
/// and its overlay, then boots until a boot ends in anything but a reboot.
const BOOT_LOOP: &str = r#"
set -e
dir=$1; ns=$2; name=$3; lower=$4; shift 4
for cg in "$@"; do echo $$ > "$cg/cgroup.procs"; done
mkdir -p /run/systemd/nspawn
mount -t tmpfs lab-nspawn /run/systemd/nspawn
mount -t overlay lab-host -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
set +e
boots=0
while [ "$boots" -lt 1000 ]; do
  echo "lab-e2e: boot $boots" >&2
  systemd-nspawn --boot --directory="$dir/merged" --network-namespace-path="/run/netns/$ns" \
    --machine="$name" --register=no --keep-unit --console=passive --quiet
  rc=$?
  echo "lab-e2e: nspawn exited $rc" >&2
  [ "$rc" -eq 133 ] || exit "$rc"
  if [ -e "$dir/never-return" ]; then echo "lab-e2e: not booting again (never-return)" >&2; exit 0; fi
  boots=$((boots + 1))
done
"#;

/// The model of NixOS's stage 2 (see `e2e/nix/switch-to-configuration.sh`).
const STAGE_2_UNIT: &str = "[Unit]
Description=lab e2e: NixOS stage 2 (booted-system, current-system, the boot default's units)
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'd=$(readlink -f /boot/lab-default) || exit 0; [ -x \"$d/bin/switch-to-configuration\" ] || exit 0; ln -sfn \"$d\" /run/booted-system; exec \"$d/bin/switch-to-configuration\" test'

[Install]
WantedBy=multi-user.target
";

/// The shared root file system (built by `e2e/rootfs.sh` on first use).
pub fn rootfs() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs.sh");
    let out = Command::new("bash").arg(&script).stdin(Stdio::null()).output().context("cannot run e2e/rootfs.sh")?;
    if !out.status.success() {
        bail!("e2e/rootfs.sh failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Fails clearly when systemd hosts cannot run here.
pub fn preflight() -> Result<()> {
    netns::preflight()?;
    for tool in ["systemd-nspawn", "debootstrap"] {
        if Command::new("sh").args(["-c", "command -v \"$1\"", "sh", tool]).output().map(|o| !o.status.success())? {
            bail!("{tool} is missing (./dev setup installs systemd-container and debootstrap)");
        }
    }
    Ok(())
}

/// One host booted by a real systemd.
pub struct SystemdHost {
    name: String,
    slot: Slot,
    ns: String,
    dir: PathBuf,
    cgroups: Vec<PathBuf>,
    boot_loop: Option<Child>,
    /// The host's ssh host key (`type base64`).
    pub host_key: String,
}

impl SystemdHost {
    /// The host's name (its hostname and its name in the ssh config).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's address.
    pub fn addr(&self) -> std::net::Ipv4Addr {
        self.slot.addr()
    }

    /// What the host wrote to its console (boots, shutdowns, nspawn exits).
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.join("console.log")).unwrap_or_default()
    }

    /// From now on the host does not boot again after it goes down (a
    /// machine that never comes back from a reboot).
    pub fn never_return(&self) {
        std::fs::write(self.dir.join("never-return"), "").expect("cannot mark the host never-return");
    }

    /// The host's own files as they are now (the overlay's upper layer holds
    /// every file it changed).
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub(crate) fn prepare(name: &str, slot: Slot, dir: &Path, client: &Client) -> Result<SystemdHost> {
        let ns = netns::ns_name(&slot);
        for sub in ["upper/etc/ssh", "upper/root/.ssh", "work", "merged"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let upper = dir.join("upper");
        std::fs::write(upper.join("etc/hostname"), format!("{name}\n"))?;
        let key = upper.join("etc/ssh/ssh_host_ed25519_key");
        let host_key = keygen(&key, name)?;
        std::fs::write(upper.join("root/.ssh/authorized_keys"), format!("{}\n", client.public))?;
        // What NixOS's stage 2 does at every boot: the boot default becomes
        // the booted and the current system, and its units start.
        let units = upper.join("etc/systemd/system");
        std::fs::create_dir_all(units.join("multi-user.target.wants"))?;
        std::fs::write(units.join("lab-boot.service"), STAGE_2_UNIT)?;
        std::os::unix::fs::symlink(
            "/etc/systemd/system/lab-boot.service",
            units.join("multi-user.target.wants/lab-boot.service"),
        )?;
        netns::create(&ns, &slot)?;
        let mut cgroups = Vec::new();
        for hierarchy in ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"] {
            if Path::new(hierarchy).join("cgroup.procs").exists() {
                cgroups.push(Path::new(hierarchy).join(&ns));
            }
        }
        if cgroups.is_empty() && Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
            cgroups.push(Path::new("/sys/fs/cgroup").join(&ns));
        }
        for cg in &cgroups {
            std::fs::create_dir_all(cg).with_context(|| format!("cannot create cgroup {}", cg.display()))?;
        }
        Ok(SystemdHost { name: name.to_string(), slot, ns, dir: dir.to_path_buf(), cgroups, boot_loop: None, host_key })
    }

    pub(crate) fn start(&mut self, lower: &Path) -> Result<()> {
        let console = std::fs::File::create(self.dir.join("console.log"))?;
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", BOOT_LOOP, "lab-e2e-boot"])
            .arg(&self.dir)
            .arg(&self.ns)
            .arg(&self.name)
            .arg(lower)
            .args(&self.cgroups)
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console);
        self.boot_loop = Some(cmd.spawn().context("cannot start the boot loop (unshare)")?);
        Ok(())
    }

    /// Stops the host for good: the boot loop first (so nothing boots it
    /// again), then every process in its network namespace, then its
    /// cgroups. Mounts go with the loop's mount namespace.
    fn stop(&mut self) {
        if let Some(mut child) = self.boot_loop.take() {
            // SAFETY: kill(2) of the boot loop this harness started (stored pid).
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
        }
        netns::destroy(&self.ns, self.slot.n);
        for cg in &self.cgroups {
            kill_cgroup(cg);
            let _ = std::fs::remove_dir(cg);
        }
    }
}

/// Kills what is left in a cgroup (and its children), bounded in time.
fn kill_cgroup(cg: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut pids = Vec::new();
        collect_pids(cg, &mut pids);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill(2) of a process in this host's own cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    remove_cgroup_tree(cg);
}

fn collect_pids(cg: &Path, out: &mut Vec<i32>) {
    if let Ok(procs) = std::fs::read_to_string(cg.join("cgroup.procs")) {
        out.extend(procs.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
    }
    for entry in std::fs::read_dir(cg).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_pids(&entry.path(), out);
        }
    }
}

/// Removes a cgroup's children, deepest first (cgroup directories are
/// removed with rmdir, never recursively).
fn remove_cgroup_tree(cg: &Path) {
    for entry in std::fs::read_dir(cg).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(cg);
}

impl Drop for SystemdHost {
    fn drop(&mut self) {
        self.stop();
    }
}

//! System-like store paths, built by real nix, and the fleet file lab reads.
//!
//! The fleet directory holds `fleet.nix` (fixed text, e2e/nix/fleet.nix),
//! `system-builder.sh`, and `fleet.json`, the data: every host's metadata
//! and its current generation's knobs. Writing a new generation rewrites
//! `fleet.json` only, so `lab --file FLEET/fleet.nix` sees it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::netns::run;

const FLEET_NIX: &str = include_str!("../nix/fleet.nix");
const SYSTEM_BUILDER: &str = include_str!("../nix/system-builder.sh");
/// The systemd hosts' builder: systems with a model of switch-to-configuration.
pub(crate) const SYSTEMD_BUILDER: &str = include_str!("../nix/sd-system-builder.sh");
const SWITCH_MODEL: &str = include_str!("../nix/switch-to-configuration.sh");

/// What a system does when activated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// The health endpoint answers 200.
    Healthy,
    /// The health endpoint answers 500.
    Unhealthy,
    /// The health endpoint never answers.
    Hangs,
    /// sshd stops and will not start again until another generation is
    /// activated (health stays 200): a configuration that locks lab out.
    BreaksSshd,
    /// The deploy user's sudo rule loses NOPASSWD (systemd hosts only):
    /// lab can no longer run privileged commands without a password.
    RemovesNopasswd,
}

impl Behaviour {
    fn as_str(self) -> &'static str {
        match self {
            Behaviour::Healthy => "healthy",
            Behaviour::Unhealthy => "unhealthy",
            Behaviour::Hangs => "hangs",
            Behaviour::BreaksSshd => "breaks-sshd",
            Behaviour::RemovesNopasswd => "removes-nopasswd",
        }
    }
}

/// The knobs of one host generation's system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemSpec {
    /// What activation does to the host.
    pub behaviour: Behaviour,
    /// Content of the kernel; a different value means "needs reboot".
    pub kernel: String,
    /// Content of the initrd.
    pub initrd: String,
    /// Content of the kernel modules.
    pub kernel_modules: String,
    /// How long activation takes.
    pub activation_delay: Duration,
    /// Activation's exit code (non-zero: a failed switch).
    pub activation_exit: i32,
    /// Packages in its closure, as (name, version): each a store path
    /// named `NAME-VERSION` the toplevel refers to (none by default).
    pub packages: Vec<(String, String)>,
}

impl Default for SystemSpec {
    fn default() -> Self {
        SystemSpec {
            behaviour: Behaviour::Healthy,
            kernel: "linux-6.6.1".into(),
            initrd: "initrd-1".into(),
            kernel_modules: "modules-1".into(),
            activation_delay: Duration::ZERO,
            activation_exit: 0,
            packages: Vec::new(),
        }
    }
}

impl SystemSpec {
    /// A healthy system with the default kernel.
    pub fn healthy() -> Self {
        Self::default()
    }
    /// A system whose health endpoint answers 500 after activation.
    pub fn unhealthy() -> Self {
        SystemSpec { behaviour: Behaviour::Unhealthy, ..Self::default() }
    }
    /// A system whose activation stops sshd for good.
    pub fn breaks_sshd() -> Self {
        SystemSpec { behaviour: Behaviour::BreaksSshd, ..Self::default() }
    }
    /// The same system with these packages (name, version) in its closure.
    pub fn with_packages(mut self, packages: &[(&str, &str)]) -> Self {
        self.packages = packages.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        self
    }
    /// The same system with another kernel (so booting it needs a reboot).
    pub fn with_kernel(mut self, kernel: &str) -> Self {
        self.kernel = kernel.into();
        self
    }
}

/// One host's entry in `fleet.json`.
pub(crate) struct FleetEntry {
    pub generation: u32,
    pub system: SystemSpec,
    pub metadata: Value,
}

/// Writes fleet.nix, the stand-in hosts' system-builder.sh and the model
/// of switch-to-configuration (once) into `dir`.
pub(crate) fn write_static(dir: &Path) -> Result<PathBuf> {
    write_static_with(dir, SYSTEM_BUILDER)
}

/// [`write_static`] with another system builder.
pub(crate) fn write_static_with(dir: &Path, builder: &str) -> Result<PathBuf> {
    std::fs::write(dir.join("system-builder.sh"), builder)?;
    std::fs::write(dir.join("switch-to-configuration.sh"), SWITCH_MODEL)?;
    let fleet = dir.join("fleet.nix");
    std::fs::write(&fleet, FLEET_NIX)?;
    Ok(fleet)
}

/// Sets generation `generation` of these hosts' systems in `entries`.
pub(crate) fn set_generation(
    entries: &mut BTreeMap<String, FleetEntry>,
    generation: u32,
    systems: &[(&str, SystemSpec)],
) -> Result<()> {
    for (name, system) in systems {
        let entry = entries.get_mut(*name).with_context(|| format!("no test host {name}"))?;
        entry.generation = generation;
        entry.system = system.clone();
    }
    Ok(())
}

/// Writes fleet.json and builds every host's toplevel with one nix-build;
/// the out-links (`result-N*` in `dir`) keep the paths alive.
pub(crate) fn build(dir: &Path, hosts: &BTreeMap<String, FleetEntry>, link: &str) -> Result<BTreeMap<String, PathBuf>> {
    let data: serde_json::Map<String, Value> = hosts
        .iter()
        .map(|(name, e)| {
            let s = &e.system;
            let entry = json!({
                "generation": e.generation,
                "behaviour": s.behaviour.as_str(),
                "kernel": s.kernel,
                "initrd": s.initrd,
                "kernelModules": s.kernel_modules,
                "activationDelayMs": s.activation_delay.as_millis().to_string(),
                "activationExit": s.activation_exit.to_string(),
                "packages": s.packages.iter().map(|(name, version)| json!({ "name": name, "version": version })).collect::<Vec<_>>(),
                "metadata": e.metadata,
            });
            (name.clone(), entry)
        })
        .collect();
    std::fs::write(dir.join("fleet.json"), serde_json::to_string_pretty(&json!({ "hosts": data }))?)?;
    let fleet = dir.join("fleet.nix");
    let out_link = dir.join(link);
    let mut args: Vec<String> =
        vec![fleet.display().to_string(), "--no-build-output".into(), "-o".into(), out_link.display().to_string()];
    for name in hosts.keys() {
        args.push("-A".into());
        args.push(format!("nixosConfigurations.{name}.config.system.build.toplevel"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("nix-build", &argv).context("building the test systems")?;
    let paths: Vec<PathBuf> = out.lines().filter(|l| l.starts_with("/nix/store/")).map(PathBuf::from).collect();
    if paths.len() != hosts.len() {
        bail!("nix-build printed {} paths for {} hosts: {out}", paths.len(), hosts.len());
    }
    Ok(hosts.keys().cloned().zip(paths).collect())
}

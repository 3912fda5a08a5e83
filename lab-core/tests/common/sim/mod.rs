//! A simulated fleet behind lab's public `Executor`, `Prober` and `Builder`
//! traits, for whole runs of the real orchestrator under tokio's paused
//! clock. The integration tests include it as `common::sim`; lab-core's
//! unit tests include the same files with `#[path]`, which is why they name
//! lab-core only through `lab_core::` paths.
//!
//! Machines answer the remote commands lab sends (probe, nix-env,
//! systemd-run with rollback timers, systemctl, reboot, boot id) from shared
//! state, and log what happened to them with the simulated time. Faults are
//! per machine ([`Faults`]).
//!
//! The simulator also watches the invariants of issue 10 as things happen,
//! because only it sees the machines' real state at the moment lab acts:
//! a machine touched (profile set, activated, rebooted) while one of its
//! dependencies is down or unhealthy, and a critical machine down together
//! with another machine, are recorded as violations.

#![allow(dead_code)] // Each test binary uses part of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lab_core::eval::Evaluation;
use lab_core::exec::Executor;
use lab_core::health::{Attempt, Prober, Via};
use lab_core::metadata::{Criticality, HealthCheck};
use lab_core::orchestrate::{BuildError, Builder, CancelToken, Escalation, Events, ProberDebug, Runtime, SystemRef};
use tokio::time::Instant;

mod exec;
pub use exec::SimExec;

/// What goes wrong on one machine. The "new system" is any system but the
/// one the machine ran at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// switch-to-configuration of the new system exits 1.
    pub activation_fails: bool,
    /// The new system fails its health checks.
    pub unhealthy: bool,
    /// A reboot never comes back.
    pub never_returns: bool,
    /// The new system breaks sshd: unreachable (and unhealthy) while it runs.
    pub breaks_ssh: bool,
    /// `systemctl stop` of the watchdogs fails (sudo refuses): exit 1.
    pub disarm_refused: bool,
    /// `systemctl stop` of the watchdogs says 0 but leaves them armed.
    pub disarm_ignored: bool,
}

/// One simulated machine.
#[derive(Debug, Clone)]
pub struct SimMachine {
    pub old: String,
    pub current: String,
    pub profile: String,
    pub booted: String,
    pub boot: u64,
    pub up: bool,
    /// When a reboot in progress comes back (`None` while up, or never).
    pub up_at: Option<Instant>,
    pub faults: Faults,
    pub reboots: usize,
    /// Activations of a system other than the one it ran at start.
    pub activations: usize,
    pub timers: BTreeSet<String>,
    /// Exit statuses lab's detached units recorded in /run/lab, by unit.
    pub statuses: BTreeMap<String, i32>,
    pub deps: Vec<String>,
    pub critical: bool,
}

impl SimMachine {
    fn runs_new(&self) -> bool {
        self.current != self.old
    }

    /// Whether ssh gets through.
    pub fn reachable(&self) -> bool {
        self.up && !(self.faults.breaks_ssh && self.runs_new())
    }

    /// What its health checks see.
    pub fn healthy(&self) -> bool {
        self.reachable() && !(self.faults.unhealthy && self.runs_new())
    }
}

/// The fleet behind [`Sim`]'s lock.
#[derive(Debug)]
pub struct SimState {
    pub machines: BTreeMap<String, SimMachine>,
    /// (ms since start, machine, what)
    pub log: Vec<(u128, String, String)>,
    pub violations: Vec<String>,
    pub activation_time: Duration,
    pub boot_time: Duration,
    /// Wait for a reboot through lab's real boot id polling (as over ssh)
    /// rather than exactly until the machine is back, which a makespan
    /// bound needs.
    pub poll_boot: bool,
    pub start: Instant,
}

/// The shared state of a simulated fleet.
#[derive(Debug, Clone)]
pub struct Sim(pub Arc<Mutex<SimState>>);

impl Sim {
    /// Machines from an evaluation (dependencies and criticality taken
    /// from their metadata), all up, running `/nix/store/<name>-old`.
    pub fn new(eval: &Evaluation, faults: &BTreeMap<String, Faults>) -> Sim {
        let machines = eval
            .machines
            .values()
            .map(|m| {
                let old = format!("/nix/store/{}-old", m.name);
                let sim = SimMachine {
                    old: old.clone(),
                    current: old.clone(),
                    profile: old.clone(),
                    booted: old,
                    boot: 0,
                    up: true,
                    up_at: None,
                    faults: faults.get(&m.name).copied().unwrap_or_default(),
                    reboots: 0,
                    activations: 0,
                    timers: BTreeSet::new(),
                    statuses: BTreeMap::new(),
                    deps: m.metadata.dependencies.clone(),
                    critical: m.metadata.orchestration.criticality_level == Criticality::Critical,
                };
                (m.name.clone(), sim)
            })
            .collect();
        Sim(Arc::new(Mutex::new(SimState {
            machines,
            log: Vec::new(),
            violations: Vec::new(),
            activation_time: Duration::from_secs(2),
            boot_time: Duration::from_secs(20),
            poll_boot: false,
            start: Instant::now(),
        })))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }

    pub fn machine(&self, name: &str) -> SimMachine {
        self.with(|s| s.machines[name].clone())
    }

    /// Changes the faults of `name`.
    pub fn fault(&self, name: &str, set: impl FnOnce(&mut Faults)) {
        self.with(|s| set(&mut s.machines.get_mut(name).unwrap().faults));
    }

    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }

    pub fn log(&self) -> Vec<(u128, String, String)> {
        self.with(|s| s.log.clone())
    }

    /// The machines in the order `what` first happened to them.
    pub fn order_of(&self, what: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, m, w) in self.log() {
            if w.starts_with(what) && !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    fn note(&self, machine: &str, what: String) {
        self.with(|s| {
            let t = s.start.elapsed().as_millis();
            s.log.push((t, machine.to_string(), what));
        });
    }

    /// One executor and prober per machine, the default builder, no events.
    pub fn runtime(&self) -> Runtime {
        let names: Vec<String> = self.with(|s| s.machines.keys().cloned().collect());
        let mut executors: BTreeMap<String, Arc<dyn Executor>> = BTreeMap::new();
        let mut probers: BTreeMap<String, Arc<dyn ProberDebug>> = BTreeMap::new();
        for n in names {
            executors.insert(n.clone(), Arc::new(SimExec { sim: self.clone(), name: n.clone() }));
            probers.insert(n.clone(), Arc::new(SimProber { sim: self.clone(), name: n }));
        }
        Runtime {
            executors,
            probers,
            builder: Some(Arc::new(SimBuilder::default())),
            escalation: Escalation::default(),
            events: Events::none(),
            cancel: CancelToken::new(),
            dry_run: false,
            notify: Default::default(),
            window: None,
        }
    }
}

impl SimState {
    /// Lab is about to change `name`: each of its dependencies must be up
    /// and healthy right now.
    fn touch(&mut self, name: &str, what: &str) {
        let at = self.start.elapsed().as_millis();
        let deps = self.machines[name].deps.clone();
        for d in deps {
            let dep = &self.machines[&d];
            if !dep.healthy() {
                self.violations.push(format!(
                    "{at} ms: {what} on {name} while its dependency {d} is {}",
                    if dep.up { "unhealthy" } else { "down" }
                ));
            }
        }
    }

    /// `name` goes down: no critical machine may be down with another,
    /// including one that never came back.
    fn going_down(&mut self, name: &str) {
        let at = self.start.elapsed().as_millis();
        let down: Vec<&String> = self.machines.iter().filter(|(n, m)| !m.up && *n != name).map(|(n, _)| n).collect();
        let critical = self.machines[name].critical || down.iter().any(|n| self.machines[*n].critical);
        if critical && !down.is_empty() {
            let v = format!("{at} ms: {name} goes down while {down:?} are down and one of them is critical");
            self.violations.push(v);
        }
    }
}

/// Healthy as [`SimMachine::healthy`] says.
#[derive(Debug)]
pub struct SimProber {
    pub sim: Sim,
    pub name: String,
}

#[async_trait]
impl Prober for SimProber {
    async fn probe(&self, _check: &HealthCheck) -> Attempt {
        let passed = self.sim.machine(&self.name).healthy();
        Attempt {
            passed,
            latency: Duration::ZERO,
            message: if passed { "ok" } else { "500" }.into(),
            via: Via::Controller,
        }
    }
}

/// Systems named `/nix/store/<name>-<suffix>`, suffix per machine (default
/// "new"); building takes no time.
#[derive(Debug, Default)]
pub struct SimBuilder {
    pub suffix: BTreeMap<String, String>,
}

#[async_trait]
impl Builder for SimBuilder {
    async fn instantiate(&self, machines: &[String]) -> Result<BTreeMap<String, SystemRef>, BuildError> {
        Ok(machines
            .iter()
            .map(|n| {
                let suffix = self.suffix.get(n).map_or("new", String::as_str);
                let out = format!("/nix/store/{n}-{suffix}");
                (n.clone(), SystemRef { drv_path: format!("{out}.drv"), out_path: out })
            })
            .collect())
    }

    async fn build(&self, _systems: &[SystemRef]) -> Result<(), BuildError> {
        Ok(())
    }
}

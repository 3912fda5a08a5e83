//! A simulated fleet behind lab's public `Executor`, `Prober` and `Builder`
//! traits, for whole runs of the real orchestrator under tokio's paused
//! clock (lab-core's own simulator is private to its unit tests).
//!
//! Machines answer the remote commands lab sends (probe, nix-env,
//! systemd-run with rollback timers, systemctl, reboot, boot id) from shared
//! state. Faults are per machine: the activation exits non-zero, the new
//! system fails its health checks, or a reboot never comes back.
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
use lab_core::exec::{Cmd, CopyOptions, ExecError, Executor, Output};
use lab_core::health::{Attempt, Prober, Via};
use lab_core::metadata::{parse_machine, HealthCheck};
use lab_core::orchestrate::{BuildError, Builder, CancelToken, Escalation, Events, ProberDebug, Runtime, SystemRef};
use serde_json::{json, Value};
use tokio::time::Instant;

/// What goes wrong on one machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// switch-to-configuration of the new system exits 1.
    pub activation_fails: bool,
    /// The new system fails its health checks.
    pub unhealthy: bool,
    /// A reboot never comes back.
    pub never_returns: bool,
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
    pub deps: Vec<String>,
    pub critical: bool,
}

impl SimMachine {
    /// What its health checks see.
    pub fn healthy(&self) -> bool {
        self.up && !(self.faults.unhealthy && self.current != self.old)
    }
}

#[derive(Debug)]
pub struct SimState {
    pub machines: BTreeMap<String, SimMachine>,
    pub violations: Vec<String>,
    pub activation_time: Duration,
    pub boot_time: Duration,
    pub start: Instant,
}

/// The shared state of a simulated fleet.
#[derive(Debug, Clone)]
pub struct Sim(pub Arc<Mutex<SimState>>);

impl Sim {
    /// Machines from an evaluation (dependencies and criticality taken
    /// from their metadata), all up, all healthy.
    pub fn new(eval: &Evaluation, faults: &BTreeMap<String, Faults>) -> Sim {
        let machines = eval
            .machines
            .values()
            .map(|m| {
                let old = format!("/nix/store/{}-old", m.name);
                let o = &m.metadata.orchestration;
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
                    deps: m.metadata.dependencies.clone(),
                    critical: o.criticality_level == lab_core::metadata::Criticality::Critical,
                };
                (m.name.clone(), sim)
            })
            .collect();
        Sim(Arc::new(Mutex::new(SimState {
            machines,
            violations: Vec::new(),
            activation_time: Duration::from_secs(2),
            boot_time: Duration::from_secs(20),
            start: Instant::now(),
        })))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }

    pub fn machine(&self, name: &str) -> SimMachine {
        self.with(|s| s.machines[name].clone())
    }

    pub fn violations(&self) -> Vec<String> {
        self.with(|s| s.violations.clone())
    }

    /// One executor and prober per machine, the builder, no events.
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
            builder: Some(Arc::new(SimBuilder)),
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

#[derive(Debug)]
pub struct SimExec {
    pub sim: Sim,
    pub name: String,
}

fn ok(stdout: impl Into<String>) -> Result<Output, ExecError> {
    Ok(Output { status: Some(0), stdout: stdout.into().into_bytes(), stderr: Vec::new() })
}

/// `--opt=value` from a systemd-run argv.
fn opt(argv: &[String], name: &str) -> Option<String> {
    argv.iter().find_map(|a| a.strip_prefix(&format!("{name}=")).map(String::from))
}

impl SimExec {
    fn unreachable(&self, cmd: &Cmd) -> ExecError {
        ExecError::Connection { machine: self.name.clone(), command: cmd.display(), message: "simulated: down".into() }
    }

    /// switch-to-configuration `system` `goal`; its exit code.
    fn switch(&self, system: &str, goal: &str) -> i32 {
        self.sim.with(|s| {
            if goal != "boot" {
                s.touch(&self.name, "activation");
            }
            let m = s.machines.get_mut(&self.name).unwrap();
            if system != m.old && goal != "boot" {
                m.activations += 1;
                if m.faults.activation_fails {
                    return 1;
                }
            }
            if goal == "switch" || goal == "test" {
                m.current = system.to_string();
            }
            0
        })
    }

    /// The rollback script's effect: args from `lab-rollback` on.
    fn rollback(&self, args: &[String]) {
        let (profile, system) = (&args[2], &args[3]);
        let cancel = &args[5..];
        self.sim.with(|s| {
            let m = s.machines.get_mut(&self.name).unwrap();
            for t in cancel {
                m.timers.remove(t.trim_end_matches(".timer"));
            }
            if !profile.is_empty() {
                m.profile = profile.clone();
            }
            m.current = system.clone();
        });
    }

    fn arm(&self, unit: String, span: Duration, rollback: Vec<String>) {
        self.sim.with(|s| s.machines.get_mut(&self.name).unwrap().timers.insert(unit.clone()));
        let this = SimExec { sim: self.sim.clone(), name: self.name.clone() };
        tokio::spawn(async move {
            tokio::time::sleep(span).await;
            let armed = this.sim.with(|s| s.machines.get_mut(&this.name).unwrap().timers.remove(&unit));
            if armed {
                this.rollback(&rollback);
            }
        });
    }
}

#[async_trait]
impl Executor for SimExec {
    fn machine(&self) -> &str {
        &self.name
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let m = self.sim.machine(&self.name);
        if !m.up {
            return Err(self.unreachable(cmd));
        }
        let argv = &cmd.argv;
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["sh", "-c", _, "lab-needs-reboot", ..] => {
                let (b, p) = (&m.booted, &m.profile);
                ok(format!("{b}\n{b}\n{b}\n{p}\n{p}\n{p}\n"))
            }
            ["sh", "-c", _] => ok(format!("sh\nnix-env\nsystemd-run\nsystemctl\n{}\n{}\n", m.current, m.profile)),
            ["readlink", "-f", "/run/current-system"] => ok(m.current.clone()),
            ["readlink", "-f", _] => ok(m.profile.clone()),
            ["cat", _] => ok(format!("boot-{}", m.boot)),
            ["nix-env", "-p", _, "--set", system] => {
                let system = system.to_string();
                self.sim.with(|s| {
                    if system != s.machines[&self.name].old {
                        s.touch(&self.name, "setting the profile");
                    }
                    s.machines.get_mut(&self.name).unwrap().profile = system;
                });
                ok("")
            }
            ["systemctl", "stop", timers @ ..] => {
                let timers: Vec<String> = timers.iter().map(|t| t.trim_end_matches(".timer").to_string()).collect();
                self.sim.with(|s| {
                    let m = s.machines.get_mut(&self.name).unwrap();
                    for t in &timers {
                        m.timers.remove(t);
                    }
                });
                ok("")
            }
            ["systemctl", "is-active", ..] => Ok(Output { status: Some(3), ..Output::default() }),
            ["systemd-run", ..] => {
                let unit = opt(argv, "--unit").unwrap_or_default();
                let dash = argv.iter().position(|a| a == "--");
                if let Some(span) = opt(argv, "--on-active") {
                    let rest = argv[dash.unwrap() + 1..].to_vec();
                    let span = Duration::from_secs(span.parse().unwrap());
                    let lab = rest.iter().position(|a| a == "lab-rollback").unwrap();
                    self.arm(unit, span, rest[lab..].to_vec());
                    return ok("");
                }
                let activation = self.sim.with(|s| s.activation_time);
                match dash.map(|d| argv[d + 1..].to_vec()) {
                    None => {
                        let goal = argv.last().unwrap().clone();
                        let system = argv[argv.len() - 2].trim_end_matches("/bin/switch-to-configuration").to_string();
                        tokio::time::sleep(activation).await;
                        let code = self.switch(&system, &goal);
                        Ok(Output { status: Some(code), ..Output::default() })
                    }
                    Some(rest) if rest.iter().any(|a| a == "lab-activate") => {
                        let at = rest.iter().position(|a| a == "lab-activate").unwrap();
                        let (system, goal, span, confirm) =
                            (&rest[at + 1], &rest[at + 2], &rest[at + 4], &rest[at + 5]);
                        tokio::time::sleep(activation).await;
                        let code = self.switch(system, goal);
                        let lab = rest.iter().position(|a| a == "lab-rollback").unwrap();
                        self.arm(confirm.clone(), Duration::from_secs(span.parse().unwrap()), rest[lab..].to_vec());
                        Ok(Output { status: Some(code), ..Output::default() })
                    }
                    Some(rest) => {
                        let lab = rest.iter().position(|a| a == "lab-rollback").unwrap();
                        tokio::time::sleep(activation).await;
                        self.rollback(&rest[lab..]);
                        ok("")
                    }
                }
            }
            other => panic!("the simulated machine does not know {other:?}"),
        }
    }

    async fn copy_closure(&self, _store_path: &str, _options: &CopyOptions) -> Result<(), ExecError> {
        Ok(())
    }

    async fn boot_id(&self) -> Result<String, ExecError> {
        let m = self.sim.machine(&self.name);
        if !m.up {
            return Err(self.unreachable(&Cmd::new(["cat", "boot_id"])));
        }
        Ok(format!("boot-{}", m.boot))
    }

    async fn reboot(&self) -> Result<(), ExecError> {
        let (boot_time, never) = self.sim.with(|s| {
            s.touch(&self.name, "reboot");
            s.going_down(&self.name);
            let boot_time = s.boot_time;
            let m = s.machines.get_mut(&self.name).unwrap();
            m.up = false;
            m.reboots += 1;
            m.up_at = (!m.faults.never_returns).then(|| Instant::now() + boot_time);
            (boot_time, m.faults.never_returns)
        });
        if never {
            return Ok(());
        }
        let sim = self.sim.clone();
        let name = self.name.clone();
        tokio::spawn(async move {
            tokio::time::sleep(boot_time).await;
            sim.with(|s| {
                let m = s.machines.get_mut(&name).unwrap();
                m.boot += 1;
                m.booted = m.profile.clone();
                m.current = m.profile.clone();
                m.timers.clear();
                m.up = true;
                m.up_at = None;
            });
        });
        Ok(())
    }

    /// Returns the moment the machine is back (a real executor polls; the
    /// simulation is exact so a makespan can be held to its bound).
    async fn wait_for_boot(&self, old_boot_id: &str, deadline: Instant) -> Result<String, ExecError> {
        let (up, up_at) = self.sim.with(|s| (s.machines[&self.name].up, s.machines[&self.name].up_at));
        if !up {
            match up_at {
                Some(at) if at <= deadline => tokio::time::sleep_until(at).await,
                _ => {
                    tokio::time::sleep_until(deadline).await;
                    return Err(ExecError::BootTimeout {
                        machine: self.name.clone(),
                        old_boot_id: old_boot_id.into(),
                        last: "simulated: down".into(),
                    });
                }
            }
            // The boot task runs at the same instant; let it.
            tokio::task::yield_now().await;
        }
        let now = self.boot_id().await?;
        if now == old_boot_id {
            return Err(ExecError::BootTimeout {
                machine: self.name.clone(),
                old_boot_id: old_boot_id.into(),
                last: "the boot id did not change".into(),
            });
        }
        Ok(now)
    }
}

/// Healthy when up and not running a new system marked unhealthy.
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

/// Systems named `/nix/store/<name>-new`; building takes no time.
#[derive(Debug, Default)]
pub struct SimBuilder;

#[async_trait]
impl Builder for SimBuilder {
    async fn instantiate(&self, machines: &[String]) -> Result<BTreeMap<String, SystemRef>, BuildError> {
        Ok(machines
            .iter()
            .map(|n| {
                let out = format!("/nix/store/{n}-new");
                (n.clone(), SystemRef { drv_path: format!("{out}.drv"), out_path: out })
            })
            .collect())
    }

    async fn build(&self, _systems: &[SystemRef]) -> Result<(), BuildError> {
        Ok(())
    }
}

/// One machine of a test fleet: name, dependencies, criticality, strategy.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub name: String,
    pub deps: Vec<String>,
    pub critical: bool,
    pub strategy: &'static str,
    pub reboot_order: i64,
}

/// Timings every simulated machine shares (seconds).
pub const REBOOT_DELAY: u64 = 5;
pub const MIN_HEALTHY: u64 = 2;

/// An evaluation of these machines with short, exact timings: one command
/// check every second, rebootDelay 5 s, minHealthyTime 2 s.
pub fn evaluation(machines: &[MachineSpec]) -> Evaluation {
    let machines = machines
        .iter()
        .map(|m| {
            let value: Value = json!({
                "role": "sim",
                "rebootOrder": m.reboot_order,
                "dependencies": m.deps,
                "orchestration": {
                    "rebootDelay": REBOOT_DELAY, "minHealthyTime": MIN_HEALTHY, "healthyDeadline": 30,
                    "rebootTimeout": 60, "confirmTimeout": 10,
                    "criticalityLevel": if m.critical { "critical" } else { "low" },
                    "deployStrategy": m.strategy,
                },
                "healthChecks": [{ "type": "command", "command": "true", "interval": 1 }],
            });
            (m.name.clone(), parse_machine(&m.name, value, None).unwrap())
        })
        .collect();
    Evaluation { machines, ..Evaluation::default() }
}

/// Peak resident memory of this process so far (VmHWM), in kB.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

//! A simulated fleet for scheduling tests under tokio's paused clock:
//! machines that answer lab's remote commands (probe, nix-env, systemd-run
//! with timers, systemctl, reboot, boot id) from shared state, and log what
//! happened to them with the simulated time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::exec::{Cmd, CopyOptions, ExecError, Executor, Output};
use crate::health::{Attempt, Prober, Via};
use crate::metadata::HealthCheck;
use crate::orchestrate::{BuildError, Builder, SystemRef};

/// A system whose name contains this fails its health checks.
pub const BAD: &str = "bad";
/// A system whose name contains this breaks sshd when activated.
pub const NO_SSH: &str = "nossh";

#[derive(Debug, Clone)]
pub struct SimMachine {
    pub current: String,
    pub profile: String,
    pub booted: String,
    pub boot: u64,
    pub up: bool,
    /// Reboots take this long; `None`: never comes back.
    pub boot_time: Option<Duration>,
    pub reboots: usize,
    pub activations: usize,
    pub timers: BTreeSet<String>,
}

#[derive(Debug)]
pub struct SimState {
    pub start: Instant,
    pub machines: BTreeMap<String, SimMachine>,
    /// (ms since start, machine, what)
    pub log: Vec<(u128, String, String)>,
    pub activation_time: Duration,
}

#[derive(Debug, Clone)]
pub struct Sim(pub Arc<Mutex<SimState>>);

impl Sim {
    pub fn new(names: &[&str]) -> Sim {
        let machines = names
            .iter()
            .map(|n| {
                let old = format!("/nix/store/{n}-old");
                let m = SimMachine {
                    current: old.clone(),
                    profile: old.clone(),
                    booted: old,
                    boot: 0,
                    up: true,
                    boot_time: Some(Duration::from_secs(20)),
                    reboots: 0,
                    activations: 0,
                    timers: BTreeSet::new(),
                };
                (n.to_string(), m)
            })
            .collect();
        Sim(Arc::new(Mutex::new(SimState {
            start: Instant::now(),
            machines,
            log: Vec::new(),
            activation_time: Duration::from_secs(2),
        })))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }

    pub fn machine(&self, name: &str) -> SimMachine {
        self.with(|s| s.machines[name].clone())
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
}

#[derive(Debug)]
pub struct SimExec {
    pub sim: Sim,
    pub name: String,
}

fn ok(stdout: impl Into<String>) -> Result<Output, ExecError> {
    Ok(Output { status: Some(0), stdout: stdout.into().into_bytes(), stderr: Vec::new() })
}

impl SimExec {
    fn unreachable(&self, cmd: &Cmd) -> ExecError {
        ExecError::Connection { machine: self.name.clone(), command: cmd.display(), message: "simulated: down".into() }
    }

    /// Activates `system` with `goal`, as switch-to-configuration does.
    fn switch(&self, system: &str, goal: &str) -> i32 {
        self.sim.note(&self.name, format!("switch {goal} {system}"));
        self.sim.with(|s| {
            let m = s.machines.get_mut(&self.name).unwrap();
            m.activations += 1;
            if goal == "switch" || goal == "test" {
                m.current = system.to_string();
            }
        });
        0
    }

    /// Runs the rollback script's effect: args after `lab-rollback`.
    fn rollback(&self, args: &[String]) {
        let (profile, system) = (&args[2], &args[3]);
        let cancel = &args[5..];
        self.sim.note(&self.name, format!("rollback to {system}"));
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
        self.sim.note(&self.name, format!("arm {unit}"));
        let this = SimExec { sim: self.sim.clone(), name: self.name.clone() };
        tokio::spawn(async move {
            tokio::time::sleep(span).await;
            let armed = this.sim.with(|s| s.machines.get_mut(&this.name).unwrap().timers.remove(&unit));
            if armed {
                this.sim.note(&this.name, format!("watchdog {unit} fired"));
                this.rollback(&rollback);
            }
        });
    }
}

/// `--opt=value` from a systemd-run argv.
fn opt(argv: &[String], name: &str) -> Option<String> {
    argv.iter().find_map(|a| a.strip_prefix(&format!("{name}=")).map(String::from))
}

#[async_trait]
impl Executor for SimExec {
    fn machine(&self) -> &str {
        &self.name
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let m = self.sim.machine(&self.name);
        if !m.up || m.current.contains(NO_SSH) {
            return Err(self.unreachable(cmd));
        }
        let argv = &cmd.argv;
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["sh", "-c", _, "lab-needs-reboot", ..] => {
                let b = &m.booted;
                let p = &m.profile;
                ok(format!("{b}\n{b}\n{b}\n{p}\n{p}\n{p}\n"))
            }
            ["sh", "-c", _] => ok(format!("sh\nnix-env\nsystemd-run\nsystemctl\n{}\n{}\n", m.current, m.profile)),
            ["readlink", "-f", "/run/current-system"] => ok(m.current.clone()),
            ["readlink", "-f", _] => ok(m.profile.clone()),
            ["cat", _] => ok(format!("boot-{}", m.boot)),
            ["nix-env", "-p", _, "--set", system] => {
                self.sim.note(&self.name, format!("profile {system}"));
                let system = system.to_string();
                self.sim.with(|s| s.machines.get_mut(&self.name).unwrap().profile = system);
                ok("")
            }
            ["systemctl", "stop", timers @ ..] => {
                self.sim.note(&self.name, "disarm".into());
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
                        self.switch(&system, &goal);
                        ok("")
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

    async fn copy_closure(&self, store_path: &str, _options: &CopyOptions) -> Result<(), ExecError> {
        self.sim.note(&self.name, format!("copy {store_path}"));
        Ok(())
    }

    async fn boot_id(&self) -> Result<String, ExecError> {
        let m = self.sim.machine(&self.name);
        if !m.up || m.current.contains(NO_SSH) {
            return Err(self.unreachable(&Cmd::new(["cat", "boot_id"])));
        }
        Ok(format!("boot-{}", m.boot))
    }

    async fn reboot(&self) -> Result<(), ExecError> {
        self.sim.note(&self.name, "reboot".into());
        let boot_time = self.sim.with(|s| {
            let m = s.machines.get_mut(&self.name).unwrap();
            m.up = false;
            m.reboots += 1;
            m.boot_time
        });
        let Some(boot_time) = boot_time else { return Ok(()) };
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
            });
            sim.note(&name, "up".into());
        });
        Ok(())
    }
}

/// Healthy when up and not running a [`BAD`] system.
#[derive(Debug)]
pub struct SimProber {
    pub sim: Sim,
    pub name: String,
}

#[async_trait]
impl Prober for SimProber {
    async fn probe(&self, _check: &HealthCheck) -> Attempt {
        let m = self.sim.machine(&self.name);
        let passed = m.up && !m.current.contains(BAD) && !m.current.contains(NO_SSH);
        Attempt {
            passed,
            latency: Duration::ZERO,
            message: if passed { "ok" } else { "500" }.into(),
            via: Via::Controller,
        }
    }
}

/// Systems named `/nix/store/<name>-<suffix>`, suffix per machine (default "new").
#[derive(Debug, Default)]
pub struct SimBuilder {
    pub suffix: BTreeMap<String, String>,
    pub builds: Mutex<usize>,
}

#[async_trait]
impl Builder for SimBuilder {
    async fn instantiate(&self, machines: &[String]) -> Result<BTreeMap<String, SystemRef>, BuildError> {
        Ok(machines
            .iter()
            .map(|n| {
                let suffix = self.suffix.get(n).cloned().unwrap_or_else(|| "new".into());
                let out = format!("/nix/store/{n}-{suffix}");
                (n.clone(), SystemRef { drv_path: format!("{out}.drv"), out_path: out })
            })
            .collect())
    }

    async fn build(&self, _systems: &[SystemRef]) -> Result<(), BuildError> {
        *self.builds.lock().unwrap() += 1;
        Ok(())
    }
}

//! A simulated machine's side of lab's `Executor`: the remote commands lab
//! sends, answered from the fleet's shared state, and reboots.

use std::time::Duration;

use async_trait::async_trait;
use lab_core::exec::{poll_new_boot, Cmd, CopyOptions, ExecError, Executor, Output};
use tokio::time::Instant;

use super::Sim;

/// One machine's executor.
#[derive(Debug)]
pub struct SimExec {
    pub sim: Sim,
    pub name: String,
}

fn ok(stdout: impl Into<String>) -> Result<Output, ExecError> {
    Ok(Output { status: Some(0), stdout: stdout.into().into_bytes(), stderr: Vec::new() })
}

fn exit(code: i32) -> Result<Output, ExecError> {
    Ok(Output { status: Some(code), ..Output::default() })
}

/// `--opt=value` from a systemd-run argv.
fn opt(argv: &[String], name: &str) -> Option<String> {
    argv.iter().find_map(|a| a.strip_prefix(&format!("{name}=")).map(String::from))
}

/// Where `arg` stands in `argv`.
fn at(argv: &[String], arg: &str) -> usize {
    argv.iter().position(|a| a == arg).unwrap()
}

impl SimExec {
    fn unreachable(&self, cmd: &Cmd) -> ExecError {
        ExecError::Connection { machine: self.name.clone(), command: cmd.display(), message: "simulated: down".into() }
    }

    /// switch-to-configuration `system` `goal`; its exit code.
    fn switch(&self, system: &str, goal: &str) -> i32 {
        self.sim.note(&self.name, format!("switch {goal} {system}"));
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
        let (profile, system, goal) = (&args[2], &args[3], &args[7]);
        let cancel = &args[9..];
        self.sim.note(&self.name, format!("rollback to {system}"));
        self.sim.with(|s| {
            let m = s.machines.get_mut(&self.name).unwrap();
            for t in cancel {
                m.timers.remove(t.trim_end_matches(".timer"));
            }
            if !profile.is_empty() {
                m.profile = profile.clone();
            }
            if goal != "boot" {
                m.current = system.clone();
            }
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

    /// `systemd-run`: a rollback timer, or a detached unit (`lab-detached`)
    /// running an activation (bare, or wrapped in `lab-activate` with its
    /// confirm watchdog) or a rollback now. A detached unit of the
    /// simulation has ended, its status recorded, when systemd-run returns:
    /// lab's first look finds it, so timings stay exact.
    async fn systemd_run(&self, argv: &[String]) -> Result<Output, ExecError> {
        let unit = opt(argv, "--unit").unwrap_or_default();
        let rest = &argv[at(argv, "--") + 1..];
        if let Some(span) = opt(argv, "--on-active") {
            self.arm(unit, Duration::from_secs(span.parse().unwrap()), rest[at(rest, "lab-rollback")..].to_vec());
            return ok("");
        }
        assert!(!argv.iter().any(|a| a == "--wait" || a == "--pipe"), "activation is detached: {argv:?}");
        let d = at(rest, "lab-detached");
        assert_eq!(rest[d + 2], format!("/run/lab/{unit}.status"), "{rest:?}");
        let inner = &rest[d + 3..];
        tokio::time::sleep(self.sim.with(|s| s.activation_time)).await;
        let code = if inner.iter().any(|a| a == "lab-activate") {
            let a = at(inner, "lab-activate");
            let (system, goal, span, confirm) = (&inner[a + 1], &inner[a + 2], &inner[a + 4], &inner[a + 5]);
            if confirm.is_empty() {
                self.switch(system, goal)
            } else {
                let code = self.switch(system, goal);
                let rollback = inner[at(inner, "lab-rollback")..].to_vec();
                self.arm(confirm.clone(), Duration::from_secs(span.parse().unwrap()), rollback);
                code
            }
        } else {
            self.rollback(&inner[at(inner, "lab-rollback")..]);
            0
        };
        self.sim.with(|s| s.machines.get_mut(&self.name).unwrap().statuses.insert(unit, code));
        ok("")
    }
}

#[async_trait]
impl Executor for SimExec {
    fn machine(&self) -> &str {
        &self.name
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let m = self.sim.machine(&self.name);
        if !m.reachable() {
            return Err(self.unreachable(cmd));
        }
        let argv = &cmd.argv;
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["sh", "-c", _, "lab-needs-reboot", ..] => {
                let (b, p) = (&m.booted, &m.profile);
                ok(format!("{b}\n{b}\n{b}\n{p}\n{p}\n{p}\n"))
            }
            ["sh", "-c", _, "lab-poll", _, _, _, unit] => match m.statuses.get(*unit) {
                Some(code) => ok(format!("ended\n{code}\n")),
                None => ok("gone\n"),
            },
            ["sh", "-c", _, "lab-verify-disarmed", _, units @ ..] => {
                let left: String =
                    units.iter().filter(|u| m.timers.contains(**u)).map(|u| format!("armed {u}.timer\n")).collect();
                ok(format!("{left}verified\n"))
            }
            ["sh", "-c", _] => ok(format!("sh\nnix-env\nsystemd-run\nsystemctl\n\n{}\n{}\n", m.current, m.profile)),
            ["sh", "-c", _, "lab-gc-root", _, _] | ["rm", "-f", _] => ok(""),
            ["readlink", "-f", "/run/current-system"] => ok(m.current.clone()),
            ["readlink", "-f", _] => ok(m.profile.clone()),
            ["cat", _] => ok(format!("boot-{}", m.boot)),
            ["nix-env", "-p", _, "--set", system] => {
                self.sim.note(&self.name, format!("profile {system}"));
                let system = system.to_string();
                self.sim.with(|s| {
                    if system != s.machines[&self.name].old {
                        s.touch(&self.name, "setting the profile");
                    }
                    s.machines.get_mut(&self.name).unwrap().profile = system;
                });
                ok("")
            }
            ["systemctl", "stop", _, ..] if m.faults.disarm_refused => {
                Ok(Output { status: Some(1), stdout: Vec::new(), stderr: b"sudo: a password is required".to_vec() })
            }
            ["systemctl", "stop", _, ..] if m.faults.disarm_ignored => ok(""),
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
            ["systemctl", "is-active", ..] => exit(3),
            ["systemd-run", ..] => self.systemd_run(argv).await,
            other => panic!("the simulated machine does not know {other:?}"),
        }
    }

    async fn copy_closure(&self, store_path: &str, _options: &CopyOptions) -> Result<(), ExecError> {
        self.sim.note(&self.name, format!("copy {store_path}"));
        Ok(())
    }

    async fn boot_id(&self) -> Result<String, ExecError> {
        let m = self.sim.machine(&self.name);
        if !m.reachable() {
            return Err(self.unreachable(&Cmd::new(["cat", "boot_id"])));
        }
        Ok(format!("boot-{}", m.boot))
    }

    async fn reboot(&self) -> Result<(), ExecError> {
        self.sim.note(&self.name, "reboot".into());
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
                m.statuses.clear();
                m.up = true;
                m.up_at = None;
            });
            sim.note(&name, "up".into());
        });
        Ok(())
    }

    /// Returns the moment the machine is back (a real executor polls; this
    /// is exact so that a makespan can be held to its bound), unless the
    /// fleet polls ([`super::SimState::poll_boot`]).
    async fn wait_for_boot(&self, old_boot_id: &str, deadline: Instant) -> Result<String, ExecError> {
        let (poll, up_at) = self.sim.with(|s| (s.poll_boot, s.machines[&self.name].up_at));
        if poll {
            return poll_new_boot(self, old_boot_id, deadline).await;
        }
        if let Some(at) = up_at.filter(|at| *at <= deadline) {
            tokio::time::sleep_until(at).await;
            // The boot task runs at the same instant; let it, however many
            // other tasks (watchdog timers of a large fleet) wake then too.
            for _ in 0..10_000 {
                if self.sim.machine(&self.name).up {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        let timeout = |last: &str| ExecError::BootTimeout {
            machine: self.name.clone(),
            old_boot_id: old_boot_id.into(),
            last: last.into(),
        };
        match self.boot_id().await {
            Ok(now) if now != old_boot_id => Ok(now),
            Ok(_) => Err(timeout("the boot id did not change")),
            Err(_) => {
                tokio::time::sleep_until(deadline).await;
                Err(timeout("simulated: down"))
            }
        }
    }
}

//! The commands lab runs on a machine to deploy and reboot it.
//!
//! Every command is an argv. Where a shell is needed (a sequence that must
//! run on the machine without lab, like the rollback watchdog), the script
//! is a constant of this file and everything from the fleet reaches it as
//! positional parameters (`"$1"`), never as script text.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exec::{Cmd, ExecError, Executor};
use crate::plan::Goal;

/// The system profile NixOS boots from.
pub const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system";
/// The parts of a NixOS system that only a reboot puts in place: where the
/// booted and the new system differ in one, a reboot is needed.
pub const BOOT_PARTS: [&str; 3] = ["kernel", "initrd", "kernel-modules"];
/// How long a quick command (readlink, systemctl stop) may take.
const QUICK: Duration = Duration::from_secs(30);

/// What the machine runs now and where its tools are; one round trip.
/// Each tool is the current system's own (`/run/current-system/sw/bin`, as
/// on NixOS), else where the login shell finds it (`command -v`, an
/// absolute path), else an empty line: never a bare name, which a system
/// unit's PATH does not find on NixOS.
const TOOLSET_SCRIPT: &str = r#"for t in sh nix-env systemd-run systemctl flock; do
  if [ -x "/run/current-system/sw/bin/$t" ]; then echo "/run/current-system/sw/bin/$t"; else command -v "$t" || echo; fi
done
readlink -f /run/current-system || echo
readlink -f /nix/var/nix/profiles/system || echo"#;

/// The shell function `switch SYSTEM ACTION` every switch lab starts goes
/// through (activations, rollbacks, watchdogs): it waits up to `$wait`
/// seconds for switch-to-configuration's lock to be free (another switch, a
/// concurrent nixos-rebuild), then runs the switch, and runs it again when
/// it failed with 1 while the lock is held (it lost the lock to another
/// switch between the wait and its start). `$flock` empty: no waiting.
/// Expects `$flock` and `$wait`; a macro so that scripts can `concat!` it.
macro_rules! switch_fn {
    () => {
        r#"lock=/run/nixos/switch-to-configuration.lock
switch() {
  tries=0
  while :; do
    if [ -n "$flock" ] && [ -e "$lock" ]; then
      ( exec 9>>"$lock"; "$flock" -w "$wait" 9 ) || { echo "lab: switch-to-configuration's lock stayed held for $wait s" >&2; return 1; }
    fi
    "$1/bin/switch-to-configuration" "$2"; rc=$?
    [ "$rc" -eq 1 ] && [ -n "$flock" ] && [ "$tries" -lt 20 ] || return "$rc"
    ( exec 9>>"$lock"; "$flock" -n 9 ) && return "$rc"
    echo "lab: switch-to-configuration's lock was taken by another switch; trying again" >&2
    tries=$((tries + 1))
  done
}
"#
    };
}

/// The watchdog's and the controller's rollback: put the profile back (when
/// the deploy changed it) and drop the failed generation's profile links, so
/// it is no boot entry; then, through the switch lock, restore the boot
/// default and the running system as the goal changed them (`switch`: both;
/// `boot`: the boot default only; `test`: the running system only, the
/// boot loader untouched). Only a rollback that switched (0, or 4: some
/// units failed) cancels the other watchdogs; one that failed leaves them
/// armed to try again, so the running system never differs from the
/// profile with no watchdog left.
/// $1 nix-env, $2 previous profile target or empty, $3 previous system,
/// $4 systemctl, $5 flock or empty, $6 seconds to wait for the lock,
/// $7 goal, $8 the failed system or empty, $9... timers to cancel.
const ROLLBACK_SCRIPT: &str = concat!(
    switch_fn!(),
    r#"nixenv=$1 profile=$2 system=$3 systemctl=$4 flock=$5 wait=$6 goal=$7 failed=$8; shift 8
if [ -n "$profile" ]; then
  "$nixenv" -p /nix/var/nix/profiles/system --set "$profile" || exit 1
  if [ -n "$failed" ] && ! [ "$failed" -ef "$profile" ]; then
    for l in /nix/var/nix/profiles/system-*-link; do
      [ "$l" -ef "$failed" ] || continue
      n=$(IFS=-; set -- $l; echo "$2")
      "$nixenv" -p /nix/var/nix/profiles/system --delete-generations "$n" || echo "lab: cannot delete the failed generation $n" >&2
    done
  fi
fi
case $goal in
  boot) if [ -n "$profile" ]; then switch "$profile" boot; fi ;;
  test) switch "$system" test ;;
  *) if [ -n "$profile" ] && ! [ "$profile" -ef "$system" ]; then switch "$profile" boot && switch "$system" test; else switch "$system" switch; fi ;;
esac
rc=$?
if [ "$rc" -eq 0 ] || [ "$rc" -eq 4 ]; then
  [ "$#" -eq 0 ] || "$systemctl" stop "$@" 2>/dev/null || true
fi
exit $rc"#
);

/// The activation: switch (through the lock), then arm the short
/// confirmation watchdog on the machine itself (no ssh needed), so the
/// confirmation window starts when activation ends however long it took.
/// Runs inside [`DETACHED_SCRIPT`], which records its exit status only
/// after this ends, so a status on the machine means the watchdog is armed
/// (or its arming failed, logged).
/// $1 system, $2 goal, $3 systemd-run, $4 span, $5 unit (empty: no
/// watchdog), $6 flock or empty, $7 seconds to wait for the lock,
/// $8... watchdog argv.
const ACTIVATE_SCRIPT: &str = concat!(
    switch_fn!(),
    r#"system=$1 goal=$2 run=$3 span=$4 unit=$5 flock=$6 wait=$7; shift 7
switch "$system" "$goal"; rc=$?
if [ -n "$unit" ]; then
  "$run" --on-active="$span" --timer-property=AccuracySec=1s --description="lab: confirmation watchdog" --unit="$unit" --collect --quiet -- "$@" || echo "lab: cannot arm the confirmation watchdog $unit" >&2
fi
exit $rc"#
);

/// The body of every detached unit lab starts (activation, rollback): runs
/// the command with its output in a file (never a pipe back to lab: a
/// switch whose output closes dies, nixpkgs #462179), then writes the
/// command's exit status atomically (temporary file, then `mv`), so a
/// status file on the machine is always whole and means the command ended.
/// $1 log file, $2 status file, $3... the command. No `${…}` here nor in any
/// script a unit runs: systemd expands it in a unit's command line
/// (unknown names to nothing) before the shell sees it.
const DETACHED_SCRIPT: &str = r#"log=$1 status=$2; shift 2
mkdir -p "$(dirname "$status")" || exit 1
rm -f "$status"
"$@" >"$log" 2>&1 </dev/null; rc=$?
printf '%s\n' "$rc" >"$status.tmp" && mv -f "$status.tmp" "$status"
exit $rc"#;

/// Where a detached unit stands, in one round trip: `ended`, its status and
/// the tail of its log; or `running`; or `gone` (neither running nor a
/// status: it died, or never started). The status is read again after the
/// unit's state, so a unit ending between the two reads is not `gone`.
/// $1 status file, $2 log file, $3 systemctl, $4 unit.
const POLL_SCRIPT: &str = r#"status=$1 log=$2 systemctl=$3 unit=$4
ended() { if [ -s "$status" ]; then echo ended; head -n 1 "$status"; tail -c 2000 "$log" 2>/dev/null; exit 0; fi; }
ended
case $("$systemctl" is-active "$unit.service" 2>/dev/null) in
  active | activating | deactivating | reloading | refreshing) echo running; exit 0 ;;
esac
ended
echo gone"#;

/// Whether anything of lab's watchdogs is left, in one round trip: prints
/// `armed UNIT.timer` per timer still active, `running UNIT.service` per
/// watchdog rollback still running, then `verified` (so that an answer cut
/// short is not read as "nothing left").
/// $1 systemctl, $2... watchdog units (without suffix).
const VERIFY_DISARMED_SCRIPT: &str = r#"systemctl=$1; shift
for u in "$@"; do
  case $("$systemctl" is-active "$u.timer" 2>/dev/null) in
    active | activating | reloading) echo "armed $u.timer" ;;
  esac
  case $("$systemctl" is-active "$u.service" 2>/dev/null) in
    active | activating | deactivating | reloading) echo "running $u.service" ;;
  esac
done
echo verified"#;

/// Where lab's detached units leave their output and exit status on the
/// machine (a tmpfs: a reboot clears it, and every unit name is new).
pub const STATE_DIR: &str = "/run/lab";

/// The output file of the detached unit `unit`.
pub fn log_path(unit: &str) -> String {
    format!("{STATE_DIR}/{unit}.log")
}

/// The exit-status file of the detached unit `unit`.
pub fn status_path(unit: &str) -> String {
    format!("{STATE_DIR}/{unit}.status")
}

/// Where a detached unit stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitState {
    /// Still running.
    Running,
    /// Ended with `status` (`None`: the status file did not read as a
    /// number); `log` is the tail of its output.
    Ended {
        /// The command's exit status.
        status: Option<i32>,
        /// The tail of its output.
        log: String,
    },
    /// Neither running nor ended with a status: killed, or never started.
    Gone,
}

/// Why lab could not disarm a machine's watchdogs.
#[derive(Debug, thiserror::Error)]
pub enum DisarmError {
    /// The machine was not reached, or a command did not run.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// `systemctl stop` ran and failed (e.g. sudo or polkit refused it).
    #[error("{machine}: stopping its watchdog timers failed ({status}): {stderr}; they are still armed and will roll it back unless stopped by hand (`systemctl stop {units}`)")]
    Refused {
        /// The machine.
        machine: String,
        /// `exit code N`.
        status: String,
        /// What systemctl or sudo said.
        stderr: String,
        /// The timers, for the hint.
        units: String,
    },
    /// After the stop, watchdogs of the attempt are still there.
    #[error("{machine}: after stopping its watchdogs, {left} still armed or running; it may roll back on its own; check `systemctl list-timers 'lab-*'` on it")]
    StillArmed {
        /// The machine.
        machine: String,
        /// What is left (`lab-confirm-x.timer armed`, …).
        left: String,
    },
}

/// Every transient unit lab starts gets a one-line description of its own.
/// Without one, systemd-run describes a unit by its command line, and a
/// multi-line script there breaks the unit file systemd keeps under
/// /run/systemd/transient: at the next `daemon-reload` (every switch does
/// one) a script line such as `[ "$#" -eq 0 ] || …` reads as a section
/// header, the unit fails to load, and an armed watchdog is gone.
fn description(what: &str) -> String {
    format!("--description=lab: {what}")
}

/// Timers fire within a second of their deadline (systemd's default
/// AccuracySec is a minute: a watchdog could roll back a minute late).
const TIMER_ACCURACY: &str = "--timer-property=AccuracySec=1s";

/// Whether the booted kernel, initrd or modules differ from the boot
/// default's; prints one line per path (`-` when missing).
const NEEDS_REBOOT_SCRIPT: &str = r#"for p in "$@"; do readlink -e "$p" || echo -; done"#;

/// A password held only in memory; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How privileged commands run when `targetUser` is not root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The prefix, e.g. `sudo -H --`.
    pub command: Vec<String>,
    /// A password fed on standard input (`--ask-sudo-password`).
    pub password: Option<Secret>,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation { command: vec!["sudo".into(), "-H".into(), "--".into()], password: None }
    }
}

impl Escalation {
    /// `argv` as `user` runs it with privileges: unchanged for root; else
    /// behind the escalation command, made non-interactive (`sudo -n`), or
    /// reading the password from standard input (`sudo -S`).
    pub fn wrap(&self, user: &str, argv: Vec<String>) -> Cmd {
        if user == "root" || self.command.is_empty() {
            return Cmd::new(argv);
        }
        let mut prefix = self.command.clone();
        let is_sudo = prefix[0] == "sudo" || prefix[0].ends_with("/sudo");
        if is_sudo {
            let flags: Vec<String> = match &self.password {
                Some(_) => vec!["-S".into(), "-p".into(), String::new()],
                None => vec!["-n".into()],
            };
            prefix.splice(1..1, flags);
        }
        let cmd = Cmd::new(prefix.into_iter().chain(argv));
        match (&self.password, is_sudo) {
            (Some(Secret(p)), true) => cmd.stdin(format!("{p}\n")),
            _ => cmd,
        }
    }
}

/// What a machine runs before an activation, and its tools: what
/// [`Remote::tools`] finds (not a health check's probe, [`crate::health::Prober`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Toolset {
    /// `sh`.
    pub sh: String,
    /// `nix-env`.
    pub nix_env: String,
    /// `systemd-run`.
    pub systemd_run: String,
    /// `systemctl`.
    pub systemctl: String,
    /// `flock`, empty when the machine has none (then lab's switches do
    /// not wait for switch-to-configuration's lock).
    #[serde(default)]
    pub flock: String,
    /// Where /run/current-system points (empty when unknown).
    pub current: String,
    /// Where the system profile points (empty when unknown).
    pub profile: String,
}

/// A machine's remote commands: its executor, its user and escalation.
#[derive(Debug, Clone, Copy)]
pub struct Remote<'a> {
    /// The machine.
    pub exec: &'a dyn Executor,
    /// `targetUser`.
    pub user: &'a str,
    /// How privileged commands run.
    pub escalation: &'a Escalation,
}

impl Remote<'_> {
    fn privileged(&self, argv: Vec<String>) -> Cmd {
        self.escalation.wrap(self.user, argv)
    }

    /// Reads what the machine runs and where its tools are. A tool the
    /// machine has nowhere is an error naming it (a dry run's machine
    /// answers nothing: its tools keep their bare names, for display).
    pub async fn tools(&self) -> Result<Toolset, ExecError> {
        let out = self.exec.run_ok(&Cmd::new(["sh", "-c", TOOLSET_SCRIPT]).timeout(QUICK)).await?;
        let text = out.stdout_text();
        let silent = text.trim().is_empty();
        let mut lines = text.lines().map(str::trim);
        let mut missing = Vec::new();
        let mut tool = |name: &str, required: bool| {
            let found = lines.next().unwrap_or_default().to_string();
            match (found.is_empty(), silent) {
                (false, _) => found,
                (true, true) => name.to_string(),
                (true, false) => {
                    if required {
                        missing.push(name.to_string());
                    }
                    String::new()
                }
            }
        };
        let tools = Toolset {
            sh: tool("sh", true),
            nix_env: tool("nix-env", true),
            systemd_run: tool("systemd-run", true),
            systemctl: tool("systemctl", true),
            flock: tool("flock", false),
            current: lines.next().unwrap_or_default().to_string(),
            profile: lines.next().unwrap_or_default().to_string(),
        };
        if !missing.is_empty() {
            return Err(ExecError::Invalid {
                machine: self.exec.machine().into(),
                message: format!(
                    "it has no {} in /run/current-system/sw/bin nor in its PATH; lab activates a machine only with its own tools",
                    missing.join(", ")
                ),
            });
        }
        Ok(tools)
    }

    /// Where /run/current-system points.
    pub async fn current_system(&self) -> Result<String, ExecError> {
        let out = self.exec.run_ok(&Cmd::new(["readlink", "-f", "/run/current-system"]).timeout(QUICK)).await?;
        Ok(out.stdout_text().trim().to_string())
    }

    /// Where the system profile points.
    pub async fn profile(&self) -> Result<String, ExecError> {
        let out = self.exec.run_ok(&Cmd::new(["readlink", "-f", SYSTEM_PROFILE]).timeout(QUICK)).await?;
        Ok(out.stdout_text().trim().to_string())
    }

    /// Points the system profile at `system` (a new generation).
    pub async fn set_profile(&self, tools: &Toolset, system: &str) -> Result<(), ExecError> {
        let argv = vec![tools.nix_env.clone(), "-p".into(), SYSTEM_PROFILE.into(), "--set".into(), system.into()];
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// The rollback to `rollback`'s previous generation, as an argv the
    /// machine can run on its own.
    pub fn rollback_argv(&self, tools: &Toolset, rollback: &Rollback) -> Vec<String> {
        let mut argv = vec![
            tools.sh.clone(),
            "-c".into(),
            ROLLBACK_SCRIPT.into(),
            "lab-rollback".into(),
            tools.nix_env.clone(),
            rollback.profile.clone().unwrap_or_default(),
            rollback.system.clone(),
            tools.systemctl.clone(),
            tools.flock.clone(),
            rollback.lock_wait.max(1).to_string(),
            rollback.goal.name().into(),
            rollback.failed.clone().unwrap_or_default(),
        ];
        argv.extend(rollback.timers.iter().map(|u| format!("{u}.timer")));
        argv
    }

    /// Arms a timer on the machine that runs the rollback after `span`
    /// unless [`disarm`](Self::disarm)ed first.
    pub async fn arm_watchdog(
        &self,
        tools: &Toolset,
        unit: &str,
        span: Duration,
        rollback: &Rollback,
    ) -> Result<(), ExecError> {
        let mut argv = vec![
            tools.systemd_run.clone(),
            format!("--on-active={}", span.as_secs().max(1)),
            TIMER_ACCURACY.into(),
            description("rollback watchdog"),
            format!("--unit={unit}"),
            "--collect".into(),
            "--quiet".into(),
            "--".into(),
        ];
        argv.extend(self.rollback_argv(tools, rollback));
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// Starts `switch-to-configuration goal` of `system` in the detached
    /// transient unit `unit` (as nixos-rebuild does), so it survives the
    /// loss of this connection; then, on the machine, the unit arms the
    /// confirmation watchdog `confirm_unit` for `confirm` (when given) and
    /// records the switch's exit status ([`status_path`]). Returns once the
    /// unit started; [`poll`](Self::poll) follows it.
    pub async fn start_activation(
        &self,
        tools: &Toolset,
        unit: &str,
        system: &str,
        goal: Goal,
        confirm: Option<(&str, Duration, &Rollback)>,
    ) -> Result<(), ExecError> {
        let mut argv = detached_unit(tools, unit, "activation", &["LOCALE_ARCHIVE", "NIXOS_INSTALL_BOOTLOADER"]);
        let (confirm_unit, span, lock_wait) = match confirm {
            Some((confirm_unit, span, rollback)) => (confirm_unit, span.as_secs().max(1), rollback.lock_wait),
            None => ("", 1, DEFAULT_LOCK_WAIT),
        };
        argv.extend([
            tools.sh.clone(),
            "-c".into(),
            ACTIVATE_SCRIPT.into(),
            "lab-activate".into(),
            system.into(),
            goal.name().into(),
            tools.systemd_run.clone(),
            span.to_string(),
            confirm_unit.into(),
            tools.flock.clone(),
            lock_wait.max(1).to_string(),
        ]);
        if let Some((_, _, rollback)) = confirm {
            argv.extend(self.rollback_argv(tools, rollback));
        }
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// Starts a rollback now, in a detached unit that survives this
    /// connection; [`poll`](Self::poll) follows it.
    pub async fn start_rollback(&self, tools: &Toolset, unit: &str, rollback: &Rollback) -> Result<(), ExecError> {
        let mut argv = detached_unit(tools, unit, "rollback", &[]);
        argv.extend(self.rollback_argv(tools, rollback));
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// Where the detached unit `unit` stands (one round trip).
    pub async fn poll(&self, tools: &Toolset, unit: &str) -> Result<UnitState, ExecError> {
        let argv = vec![
            tools.sh.clone(),
            "-c".into(),
            POLL_SCRIPT.into(),
            "lab-poll".into(),
            status_path(unit),
            log_path(unit),
            tools.systemctl.clone(),
            unit.into(),
        ];
        let out = self.exec.run_ok(&Cmd::new(argv).timeout(QUICK)).await?;
        let text = out.stdout_text();
        let mut lines = text.lines();
        match lines.next().map(str::trim) {
            Some("ended") => {
                let status = lines.next().and_then(|l| l.trim().parse().ok());
                Ok(UnitState::Ended { status, log: lines.collect::<Vec<_>>().join("\n") })
            }
            Some("running") => Ok(UnitState::Running),
            Some("gone") => Ok(UnitState::Gone),
            _ => Err(ExecError::Invalid {
                machine: self.exec.machine().into(),
                message: format!(
                    "asked where the unit {unit} stands, it answered {:?}",
                    crate::exec::tail(&out.stdout, 200)
                ),
            }),
        }
    }

    /// Stops the watchdog timers `units` and verifies, in a second round
    /// trip, that none of them is armed and none of their rollbacks runs.
    /// A timer that is already gone is fine (`systemctl stop` exit 5, "not
    /// loaded"); any other failure of the stop is an error, as is anything
    /// left after it.
    pub async fn disarm(&self, tools: &Toolset, units: &[String]) -> Result<(), DisarmError> {
        let machine = self.exec.machine().to_string();
        let mut argv = vec![tools.systemctl.clone(), "stop".into()];
        argv.extend(units.iter().map(|u| format!("{u}.timer")));
        let out = self.exec.run(&self.privileged(argv).timeout(QUICK)).await?;
        if !matches!(out.status, Some(0) | Some(5)) {
            return Err(DisarmError::Refused {
                machine,
                status: out.status.map_or("killed by a signal".into(), |c| format!("exit code {c}")),
                stderr: crate::exec::tail(&out.stderr, 300),
                units: units.iter().map(|u| format!("{u}.timer")).collect::<Vec<_>>().join(" "),
            });
        }
        let mut argv = vec![tools.sh.clone(), "-c".into(), VERIFY_DISARMED_SCRIPT.into(), "lab-verify-disarmed".into()];
        argv.push(tools.systemctl.clone());
        argv.extend(units.iter().cloned());
        let out = self.exec.run_ok(&Cmd::new(argv).timeout(QUICK)).await?;
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.last() != Some(&"verified") {
            return Err(DisarmError::Exec(ExecError::Invalid {
                machine,
                message: format!(
                    "asked whether its watchdogs are gone, it answered {:?}",
                    crate::exec::tail(&out.stdout, 200)
                ),
            }));
        }
        let left: Vec<String> = lines[..lines.len() - 1]
            .iter()
            .filter_map(|l| l.split_once(' ').map(|(what, unit)| format!("{unit} {what}")))
            .collect();
        match left.is_empty() {
            true => Ok(()),
            false => Err(DisarmError::StillArmed { machine, left: left.join(", ") }),
        }
    }

    /// Roots `system` on the machine at `root` (see [`gc_root`]), so a
    /// garbage collection between its copy and its activation keeps it.
    pub async fn add_gc_root(&self, root: &str, system: &str) -> Result<(), ExecError> {
        let argv =
            vec!["sh".into(), "-c".into(), ADD_ROOT_SCRIPT.into(), "lab-gc-root".into(), root.into(), system.into()];
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// Removes the GC root `root` (the activation is over: the profile, or
    /// nothing, keeps the system now).
    pub async fn remove_gc_root(&self, root: &str) -> Result<(), ExecError> {
        let argv = vec!["rm".into(), "-f".into(), root.into()];
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// Which of the services `units` (names without suffix) run now, in
    /// one round trip (the disarm check's `running` lines).
    pub async fn running(&self, tools: &Toolset, units: &[String]) -> Result<Vec<String>, ExecError> {
        let mut argv = vec![tools.sh.clone(), "-c".into(), VERIFY_DISARMED_SCRIPT.into(), "lab-verify-disarmed".into()];
        argv.push(tools.systemctl.clone());
        argv.extend(units.iter().cloned());
        let out = self.exec.run_ok(&Cmd::new(argv).timeout(QUICK)).await?;
        let text = out.stdout_text();
        if text.lines().last().map(str::trim) != Some("verified") && !text.trim().is_empty() {
            return Err(ExecError::Invalid {
                machine: self.exec.machine().into(),
                message: format!(
                    "asked which of lab's units run, it answered {:?}",
                    crate::exec::tail(&out.stdout, 200)
                ),
            });
        }
        Ok(text.lines().filter_map(|l| l.trim().strip_prefix("running ").map(String::from)).collect())
    }

    /// Makes the store path `system` by building its derivation `drv` on
    /// the machine (`--build-on-target`).
    pub async fn realise(&self, drv: &str) -> Result<(), ExecError> {
        let argv = vec!["nix-store".into(), "--realise".into(), drv.into()];
        self.exec.run_ok(&self.privileged(argv).timeout(Duration::from_secs(6 * 3600))).await.map(drop)
    }

    /// Why the machine needs a reboot, or `None`: its booted kernel, initrd
    /// or kernel modules differ from those of its boot default (the system
    /// profile), as NixOS's auto-upgrade decides. The profile, not
    /// /run/current-system, because a `boot` deploy changes only the profile.
    pub async fn needs_reboot(&self) -> Result<Option<String>, ExecError> {
        let parts = BOOT_PARTS;
        let mut argv: Vec<String> =
            vec!["sh".into(), "-c".into(), NEEDS_REBOOT_SCRIPT.into(), "lab-needs-reboot".into()];
        argv.extend(parts.iter().map(|p| format!("/run/booted-system/{p}")));
        argv.extend(parts.iter().map(|p| format!("{SYSTEM_PROFILE}/{p}")));
        let out = self.exec.run_ok(&Cmd::new(argv).timeout(QUICK)).await?;
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        if lines.len() < 6 {
            // A dry run, or a shell that printed too little: unknown counts
            // as needed, so a dry run shows the whole reboot.
            return Ok(Some("cannot tell whether the booted system differs; rebooting".into()));
        }
        let differing: Vec<&str> =
            parts.iter().enumerate().filter(|(i, _)| lines[*i] != lines[i + 3]).map(|(_, p)| *p).collect();
        Ok((!differing.is_empty()).then(|| format!("booted {} differ from the boot default", differing.join(", "))))
    }
}

/// `systemd-run` starting the detached transient unit `unit` (no `--wait`,
/// no `--pipe`: its output goes to [`log_path`] on the machine, its exit
/// status to [`status_path`], through [`DETACHED_SCRIPT`]), passing on the
/// environment variables `env` (as nixos-rebuild does); the command follows.
fn detached_unit(tools: &Toolset, unit: &str, what: &str, env: &[&str]) -> Vec<String> {
    let mut argv = vec![tools.systemd_run.clone(), description(what)];
    for name in env {
        argv.extend(["-E".to_string(), name.to_string()]);
    }
    argv.extend(["--collect", "--no-ask-password", "--quiet", "--service-type=exec"].map(String::from));
    argv.extend([format!("--unit={unit}"), "--".into()]);
    argv.extend([tools.sh.clone(), "-c".into(), DETACHED_SCRIPT.into(), "lab-detached".into()]);
    argv.extend([log_path(unit), status_path(unit)]);
    argv
}

/// How long a switch waits for switch-to-configuration's lock unless the
/// machine's activation bound says otherwise.
pub const DEFAULT_LOCK_WAIT: u64 = 240;

fn default_lock_wait() -> u64 {
    DEFAULT_LOCK_WAIT
}

/// What a rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The profile target to restore, when the deploy changed the profile.
    pub profile: Option<String>,
    /// The system to activate again.
    pub system: String,
    /// Watchdog timers (unit names without `.timer`) the rollback cancels:
    /// this attempt's and those of interrupted attempts of the same run.
    pub timers: Vec<String>,
    /// The goal of the deploy it undoes: `switch` restores the boot default
    /// and the running system, `boot` the boot default only, `test` the
    /// running system only (the boot loader untouched).
    #[serde(default)]
    pub goal: Goal,
    /// The system that failed: its profile generations are deleted, so it
    /// is no boot entry.
    #[serde(default)]
    pub failed: Option<String>,
    /// How long the rollback's switch waits for switch-to-configuration's
    /// lock, in seconds.
    #[serde(default = "default_lock_wait")]
    pub lock_wait: u64,
}

/// The GC root lab keeps on a machine for `system` between its copy and
/// its activation (run `run_id`).
pub fn gc_root(run_id: &str, system: &str) -> String {
    let run: String = run_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let base = system.rsplit('/').next().unwrap_or(system);
    format!("{GC_ROOTS}/{run}-{base}")
}

/// Where lab's GC roots live on a machine.
pub const GC_ROOTS: &str = "/nix/var/nix/gcroots/lab";

/// Makes `root` a GC root of `system` on the machine (a symlink in
/// gcroots; made before the copy, it holds the closure from the moment
/// it is whole).
const ADD_ROOT_SCRIPT: &str = r#"mkdir -p "$(dirname "$1")" && ln -sfn "$2" "$1""#;

/// The transient units of one activation attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Units {
    /// Runs switch-to-configuration.
    pub switch: String,
    /// The long watchdog armed before activation.
    pub watchdog: String,
    /// The short watchdog armed on the machine when activation ends.
    pub confirm: String,
    /// A rollback lab starts.
    pub undo: String,
}

/// What an activation left to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activated {
    /// The machine's tools and previous generation.
    /// (Journaled as `probe`, its name before, so that old journals read.)
    #[serde(rename = "probe")]
    pub tools: Toolset,
    /// How to go back.
    pub rollback: Rollback,
    /// The attempt's units.
    pub units: Units,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_only_for_other_users_and_never_interactive() {
        let e = Escalation::default();
        assert_eq!(e.wrap("root", vec!["reboot".into()]).argv, ["reboot"]);
        assert_eq!(e.wrap("deploy", vec!["reboot".into()]).argv, ["sudo", "-n", "-H", "--", "reboot"]);
        let with_password = Escalation { password: Some(Secret::new("pw")), ..Escalation::default() };
        let cmd = with_password.wrap("deploy", vec!["reboot".into()]);
        assert_eq!(cmd.argv, ["sudo", "-S", "-p", "", "-H", "--", "reboot"]);
        assert_eq!(cmd.stdin.as_deref(), Some(&b"pw\n"[..]));
        assert!(!format!("{with_password:?}").contains("pw\""));
        let doas = Escalation { command: vec!["doas".into()], password: None };
        assert_eq!(doas.wrap("deploy", vec!["reboot".into()]).argv, ["doas", "reboot"]);
    }

    /// systemd expands `${NAME}` (and collapses `$$`) in a unit's command
    /// line, so the scripts units run must hold neither.
    #[test]
    fn unit_scripts_survive_systemd_expansion() {
        for script in [DETACHED_SCRIPT, ACTIVATE_SCRIPT, ROLLBACK_SCRIPT, POLL_SCRIPT, VERIFY_DISARMED_SCRIPT] {
            assert!(!script.contains("${") && !script.contains("$$"), "{script}");
        }
    }

    /// A detached unit's body records the command's status only after it
    /// ended, atomically, and its output in the log.
    #[test]
    fn the_detached_body_records_status_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let (log, status) = (dir.path().join("u/u.log"), dir.path().join("u/u.status"));
        let out = std::process::Command::new("sh")
            .args(["-c", DETACHED_SCRIPT, "lab-detached"])
            .arg(&log)
            .arg(&status)
            .args(["sh", "-c", "echo said; exit 4"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(std::fs::read_to_string(&status).unwrap(), "4\n");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "said\n");
        assert!(!dir.path().join("u/u.status.tmp").exists());
    }

    /// The constant scripts take their data as arguments: run them with a
    /// hostile value and see it arrive intact.
    #[test]
    fn scripts_take_data_as_arguments() {
        let hostile = "/tmp/x'; touch /tmp/lab-remote-pwned; echo '";
        let out = std::process::Command::new("sh")
            .args(["-c", NEEDS_REBOOT_SCRIPT, "lab-needs-reboot", hostile])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "-");
        assert!(!std::path::Path::new("/tmp/lab-remote-pwned").exists());
    }
}

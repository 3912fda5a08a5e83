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
/// How long a quick command (readlink, systemctl stop) may take.
const QUICK: Duration = Duration::from_secs(30);

/// What the machine runs now and where its tools are; one round trip.
/// Tools are looked up with `command -v` (not resolved further) because a
/// transient unit's PATH is not the login shell's.
const PROBE_SCRIPT: &str = r#"for t in sh nix-env systemd-run systemctl; do command -v "$t" || echo "$t"; done
readlink -f /run/current-system || echo
readlink -f /nix/var/nix/profiles/system || echo"#;

/// The watchdog's and the controller's rollback: cancel the other timers,
/// put the profile back (when it was changed), activate the previous system.
/// $1 nix-env, $2 previous profile target or empty, $3 previous system,
/// $4 systemctl, $5... timers to cancel.
const ROLLBACK_SCRIPT: &str = r#"nixenv=$1 profile=$2 system=$3 systemctl=$4; shift 4
[ "$#" -eq 0 ] || "$systemctl" stop "$@" 2>/dev/null || true
if [ -n "$profile" ]; then "$nixenv" -p /nix/var/nix/profiles/system --set "$profile" || exit 1; fi
exec "$system/bin/switch-to-configuration" switch"#;

/// The activation: switch, then arm the short confirmation watchdog on the
/// machine itself (no ssh needed), so the confirmation window starts when
/// activation ends however long it took. Runs inside [`DETACHED_SCRIPT`],
/// which records its exit status only after this ends, so a status on the
/// machine means the watchdog is armed (or its arming failed, logged).
/// $1 system, $2 goal, $3 systemd-run, $4 span, $5 unit, $6... watchdog argv.
const ACTIVATE_SCRIPT: &str = r#"system=$1 goal=$2 run=$3 span=$4 unit=$5; shift 5
"$system/bin/switch-to-configuration" "$goal"; rc=$?
"$run" --on-active="$span" --timer-property=AccuracySec=1s --description="lab: confirmation watchdog" --unit="$unit" --collect --quiet -- "$@" || echo "lab: cannot arm the confirmation watchdog $unit" >&2
exit $rc"#;

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

/// What a machine runs before an activation, and its tools.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// `sh`.
    pub sh: String,
    /// `nix-env`.
    pub nix_env: String,
    /// `systemd-run`.
    pub systemd_run: String,
    /// `systemctl`.
    pub systemctl: String,
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

    /// Reads what the machine runs and where its tools are.
    pub async fn probe(&self) -> Result<Probe, ExecError> {
        let out = self.exec.run_ok(&Cmd::new(["sh", "-c", PROBE_SCRIPT]).timeout(QUICK)).await?;
        let text = out.stdout_text();
        let mut lines = text.lines().map(str::trim);
        let mut next = |default: &str| lines.next().filter(|l| !l.is_empty()).unwrap_or(default).to_string();
        Ok(Probe {
            sh: next("sh"),
            nix_env: next("nix-env"),
            systemd_run: next("systemd-run"),
            systemctl: next("systemctl"),
            current: next(""),
            profile: next(""),
        })
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
    pub async fn set_profile(&self, probe: &Probe, system: &str) -> Result<(), ExecError> {
        let argv = vec![probe.nix_env.clone(), "-p".into(), SYSTEM_PROFILE.into(), "--set".into(), system.into()];
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// The rollback to `rollback`'s previous generation, as an argv the
    /// machine can run on its own.
    pub fn rollback_argv(&self, probe: &Probe, rollback: &Rollback) -> Vec<String> {
        let mut argv = vec![
            probe.sh.clone(),
            "-c".into(),
            ROLLBACK_SCRIPT.into(),
            "lab-rollback".into(),
            probe.nix_env.clone(),
            rollback.profile.clone().unwrap_or_default(),
            rollback.system.clone(),
            probe.systemctl.clone(),
        ];
        argv.extend(rollback.timers.iter().map(|u| format!("{u}.timer")));
        argv
    }

    /// Arms a timer on the machine that runs the rollback after `span`
    /// unless [`disarm`](Self::disarm)ed first.
    pub async fn arm_watchdog(
        &self,
        probe: &Probe,
        unit: &str,
        span: Duration,
        rollback: &Rollback,
    ) -> Result<(), ExecError> {
        let mut argv = vec![
            probe.systemd_run.clone(),
            format!("--on-active={}", span.as_secs().max(1)),
            TIMER_ACCURACY.into(),
            description("rollback watchdog"),
            format!("--unit={unit}"),
            "--collect".into(),
            "--quiet".into(),
            "--".into(),
        ];
        argv.extend(self.rollback_argv(probe, rollback));
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
        probe: &Probe,
        unit: &str,
        system: &str,
        goal: Goal,
        confirm: Option<(&str, Duration, &Rollback)>,
    ) -> Result<(), ExecError> {
        let mut argv = detached_unit(probe, unit, "activation", &["LOCALE_ARCHIVE", "NIXOS_INSTALL_BOOTLOADER"]);
        match confirm {
            None => {
                argv.push(format!("{system}/bin/switch-to-configuration"));
                argv.push(goal.name().into());
            }
            Some((confirm_unit, span, rollback)) => {
                argv.extend([
                    probe.sh.clone(),
                    "-c".into(),
                    ACTIVATE_SCRIPT.into(),
                    "lab-activate".into(),
                    system.into(),
                    goal.name().into(),
                    probe.systemd_run.clone(),
                    span.as_secs().max(1).to_string(),
                    confirm_unit.into(),
                ]);
                argv.extend(self.rollback_argv(probe, rollback));
            }
        }
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// Starts a rollback now, in a detached unit that survives this
    /// connection; [`poll`](Self::poll) follows it.
    pub async fn start_rollback(&self, probe: &Probe, unit: &str, rollback: &Rollback) -> Result<(), ExecError> {
        let mut argv = detached_unit(probe, unit, "rollback", &[]);
        argv.extend(self.rollback_argv(probe, rollback));
        self.exec.run_ok(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// Where the detached unit `unit` stands (one round trip).
    pub async fn poll(&self, probe: &Probe, unit: &str) -> Result<UnitState, ExecError> {
        let argv = vec![
            probe.sh.clone(),
            "-c".into(),
            POLL_SCRIPT.into(),
            "lab-poll".into(),
            status_path(unit),
            log_path(unit),
            probe.systemctl.clone(),
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
    pub async fn disarm(&self, probe: &Probe, units: &[String]) -> Result<(), DisarmError> {
        let machine = self.exec.machine().to_string();
        let mut argv = vec![probe.systemctl.clone(), "stop".into()];
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
        let mut argv = vec![probe.sh.clone(), "-c".into(), VERIFY_DISARMED_SCRIPT.into(), "lab-verify-disarmed".into()];
        argv.push(probe.systemctl.clone());
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
        let parts = ["kernel", "initrd", "kernel-modules"];
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
fn detached_unit(probe: &Probe, unit: &str, what: &str, env: &[&str]) -> Vec<String> {
    let mut argv = vec![probe.systemd_run.clone(), description(what)];
    for name in env {
        argv.extend(["-E".to_string(), name.to_string()]);
    }
    argv.extend(["--collect", "--no-ask-password", "--quiet", "--service-type=exec"].map(String::from));
    argv.extend([format!("--unit={unit}"), "--".into()]);
    argv.extend([probe.sh.clone(), "-c".into(), DETACHED_SCRIPT.into(), "lab-detached".into()]);
    argv.extend([log_path(unit), status_path(unit)]);
    argv
}

/// What a rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The profile target to restore, when the deploy changed the profile.
    pub profile: Option<String>,
    /// The system to activate again.
    pub system: String,
    /// Watchdog timers (unit names without `.timer`) the rollback cancels.
    pub timers: Vec<String>,
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
        for script in [DETACHED_SCRIPT, ACTIVATE_SCRIPT, ROLLBACK_SCRIPT] {
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

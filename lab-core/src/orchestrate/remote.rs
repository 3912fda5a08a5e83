//! The commands lab runs on a machine to deploy and reboot it.
//!
//! Every command is an argv. Where a shell is needed (a sequence that must
//! run on the machine without lab, like the rollback watchdog), the script
//! is a constant of this file and everything from the fleet reaches it as
//! positional parameters (`"$1"`), never as script text.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exec::{Cmd, ExecError, Executor, Output};
use crate::plan::Goal;

/// The system profile NixOS boots from.
pub const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system";
/// How long switch-to-configuration may run.
pub const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
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

/// The activation unit: switch, then arm the short confirmation watchdog on
/// the machine itself (no ssh needed), so the confirmation window starts
/// when activation ends however long it took.
/// $1 system, $2 goal, $3 systemd-run, $4 span, $5 unit, $6... watchdog argv.
const ACTIVATE_SCRIPT: &str = r#"system=$1 goal=$2 run=$3 span=$4 unit=$5; shift 5
"$system/bin/switch-to-configuration" "$goal"; rc=$?
"$run" --on-active="$span" --timer-property=AccuracySec=1s --description="lab: confirmation watchdog" --unit="$unit" --collect --quiet -- "$@" || echo "lab: cannot arm the confirmation watchdog $unit" >&2
exit $rc"#;

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

    /// Runs `switch-to-configuration goal` of `system` in a transient unit
    /// (as nixos-rebuild does), so it survives the loss of this connection;
    /// then, on the machine, arms the confirmation watchdog `confirm_unit`
    /// for `confirm` (when given). Returns the command's output.
    pub async fn activate(
        &self,
        probe: &Probe,
        unit: &str,
        system: &str,
        goal: Goal,
        confirm: Option<(&str, Duration, &Rollback)>,
    ) -> Result<Output, ExecError> {
        let mut argv = waited_unit(probe, unit, "activation", &["LOCALE_ARCHIVE", "NIXOS_INSTALL_BOOTLOADER"]);
        match confirm {
            None => {
                argv.push(format!("{system}/bin/switch-to-configuration"));
                argv.push(goal.name().into());
            }
            Some((confirm_unit, span, rollback)) => {
                argv.extend([
                    "--".into(),
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
        self.exec.run(&self.privileged(argv).timeout(ACTIVATION_TIMEOUT)).await
    }

    /// Rolls back now, in a transient unit that survives this connection.
    pub async fn rollback_now(&self, probe: &Probe, unit: &str, rollback: &Rollback) -> Result<Output, ExecError> {
        let mut argv = waited_unit(probe, unit, "rollback", &[]);
        argv.push("--".into());
        argv.extend(self.rollback_argv(probe, rollback));
        self.exec.run(&self.privileged(argv).timeout(ACTIVATION_TIMEOUT)).await
    }

    /// Stops the watchdog timers `units` (missing ones are fine).
    pub async fn disarm(&self, probe: &Probe, units: &[String]) -> Result<(), ExecError> {
        let mut argv = vec![probe.systemctl.clone(), "stop".into()];
        argv.extend(units.iter().map(|u| format!("{u}.timer")));
        // `systemctl stop` of a timer that already went is exit 5; what
        // matters is the system running afterwards, which the caller reads.
        self.exec.run(&self.privileged(argv).timeout(QUICK)).await.map(drop)
    }

    /// True while the transient unit `unit` is still running.
    pub async fn unit_active(&self, probe: &Probe, unit: &str) -> Result<bool, ExecError> {
        let argv = vec![probe.systemctl.clone(), "is-active".into(), "--quiet".into(), format!("{unit}.service")];
        Ok(self.exec.run(&Cmd::new(argv).timeout(QUICK)).await?.success())
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

/// `systemd-run` starting the transient unit `unit` and waiting for it,
/// passing on the environment variables `env` (as nixos-rebuild does), its
/// output piped back; the command follows.
fn waited_unit(probe: &Probe, unit: &str, what: &str, env: &[&str]) -> Vec<String> {
    let mut argv = vec![probe.systemd_run.clone(), description(what)];
    for name in env {
        argv.extend(["-E".to_string(), name.to_string()]);
    }
    argv.extend(["--collect", "--no-ask-password", "--pipe", "--quiet", "--service-type=exec"].map(String::from));
    argv.extend([format!("--unit={unit}"), "--wait".into()]);
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

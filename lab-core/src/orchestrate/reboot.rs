//! Reboot: per machine, wait its rebootDelay, record the boot id, reboot,
//! wait for a new boot id within rebootTimeout, then the health gate within
//! healthyDeadline. A machine that does not come back or stays unhealthy
//! fails; the run stops (or, with --keep-going, skips its dependents).
//!
//! The boot id journaled before the reboot is the proof on resume: a machine
//! whose boot id changed has rebooted and is never rebooted again.

use std::time::Duration;

use tokio::time::Instant;

use super::ctx::Ctx;
use super::events::Event;
use super::gate;
use super::report::MachineOutcome;
use super::window_gate::WindowClosed;
use crate::exec::{ArmedReboot, Cmd, ExecError};
use crate::health::seconds;
use crate::plan::{step_id, Action, MachinePlan, Plan, PlanKind};
use crate::store::journal::{JournalError, StepState};
use crate::store::now_ms;
use crate::store::record::StepDetail;

const KIND: PlanKind = PlanKind::Reboot;
/// On resume, how long a reboot that was in flight gets to show (a new boot
/// id) before it is issued again.
const REISSUE_GRACE: Duration = Duration::from_secs(30);
/// How long a reboot started through its prepared session may take to end
/// that session (the machine going down ends it).
const ARMED_REBOOT_TIMEOUT: Duration = Duration::from_secs(20);

/// Reboots one machine through its steps.
pub(super) async fn machine(ctx: &Ctx<'_>, plan: &Plan, m: &MachinePlan) -> Result<(), JournalError> {
    let name = m.machine.as_str();
    let o = &ctx.machine(name).metadata.orchestration;
    if ctx.rt.cancel.is_cancelled() {
        return Ok(());
    }
    if plan.options.only_if_needed && !needed(ctx, m).await? {
        return Ok(());
    }

    // rebootDelay, minus what an interrupted run already waited.
    let mut boot_id = None;
    let mut armed = None;
    let id = step_id(KIND, name, Action::Wait);
    let prior = ctx.prior.get(&id).cloned();
    if prior.as_ref().map(|p| p.state) == Some(StepState::Finished) {
        ctx.already_done(&id, name);
    } else {
        let delay = if plan.options.no_delay { Duration::ZERO } else { seconds(o.reboot_delay) };
        let waited = prior.and_then(|p| p.started_ms).map_or(0, |t| now_ms().saturating_sub(t));
        let delay = delay.saturating_sub(Duration::from_millis(waited));
        // The step (and its event) says the delay the real run waits, as
        // the plan does; a dry run only does not sleep it.
        let sleep = if ctx.rt.dry_run { Duration::ZERO } else { delay };
        let step = ctx.start(
            KIND,
            name,
            Action::Wait,
            format!("wait {} s (rebootDelay)", delay.as_secs()),
            StepDetail::Delay { seconds: delay.as_secs() },
        )?;
        // The boot id is read, the reboot's session opened and the health
        // prober made ready while the delay runs: none of it costs the
        // sequence anything.
        let root = ctx.machine(name).metadata.target_user == "root";
        let (slept, (early, ready), ()) = tokio::join!(
            async {
                tokio::select! {
                    () = tokio::time::sleep(sleep) => true,
                    // Left started: resume waits for the rest.
                    () = ctx.rt.cancel.cancelled() => false,
                }
            },
            // One after the other: the first opens the connection, the
            // reboot's session then shares it (two clients racing to open
            // a multiplexed connection can stall each other).
            async {
                let early = ctx.exec(name).boot_id().await;
                let armed = match root && !ctx.rt.dry_run {
                    true => ctx.exec(name).arm_reboot().await,
                    false => None,
                };
                (early, armed)
            },
            ctx.prober(name).prepare()
        );
        if !slept {
            return Ok(());
        }
        ctx.finish(&step, name, Action::Wait, "waited".into(), StepDetail::None)?;
        boot_id = early.ok();
        armed = ready;
    }

    if !in_window(ctx, m).await? {
        return Ok(());
    }
    let Some(before) = reboot(ctx, name, boot_id, armed).await? else { return Ok(()) };

    let id = step_id(KIND, name, Action::WaitForBoot);
    if ctx.prior.state(&id) == StepState::Finished {
        ctx.already_done(&id, name);
    } else {
        let step = ctx.start(
            KIND,
            name,
            Action::WaitForBoot,
            format!("within rebootTimeout {} s", o.reboot_timeout),
            StepDetail::BootIdBefore { boot_id_before: before.clone() },
        )?;
        let deadline = Instant::now() + seconds(o.reboot_timeout);
        match ctx.exec(name).wait_for_boot(&before, deadline).await {
            Ok(new) => {
                if let Some(why) = booted_elsewhere(ctx, name).await {
                    let error =
                        format!("{name} came back (boot id {new}) but {why}; nothing that depends on it was touched");
                    return ctx.fail(&step, name, Action::WaitForBoot, error);
                }
                ctx.finish(
                    &step,
                    name,
                    Action::WaitForBoot,
                    format!("back with boot id {new}"),
                    StepDetail::BootId { boot_id: new },
                )?
            }
            Err(e) => {
                let when = match e {
                    ExecError::HostKey { .. } => {
                        "it came back from the reboot with a host key ssh does not accept, still at rebootTimeout"
                    }
                    _ => "rebootTimeout is",
                };
                let error = format!("{e}; {when} {} s; nothing that depends on it was touched", o.reboot_timeout);
                return ctx.fail(&step, name, Action::WaitForBoot, error);
            }
        }
    }
    if gate::check(ctx, KIND, name).await?.is_ok() {
        ctx.set_outcome(name, MachineOutcome::Done, String::new());
    }
    Ok(())
}

/// Why the machine, back from its reboot, does not run its boot default
/// (the system profile, which a deploy set): `/run/booted-system` is
/// another generation (a boot loader that was not updated, an older entry
/// chosen at the console). `None` when it does, or when it cannot tell (no
/// NixOS links, a dry run).
async fn booted_elsewhere(ctx: &Ctx<'_>, name: &str) -> Option<String> {
    if ctx.rt.dry_run {
        return None;
    }
    let read = Cmd::new(["readlink", "-f", "/run/booted-system"]).timeout(Duration::from_secs(30));
    let booted = ctx.exec(name).run_ok(&read).await.ok()?.stdout_text().trim().to_string();
    let default = ctx.remote(name).profile().await.ok()?;
    let store = |p: &str| p.starts_with("/nix/store/");
    (store(&booted) && store(&default) && booted != default)
        .then(|| format!("it booted {booted}, not its boot default {default}"))
}

/// Whether `m` may reboot now under the run's maintenance window: at once
/// inside it; outside it after waiting for it, or never (its remaining
/// steps skipped, saying when the window opens). A reboot already issued
/// by an interrupted run is followed up whatever the time.
async fn in_window(ctx: &Ctx<'_>, m: &MachinePlan) -> Result<bool, JournalError> {
    let name = m.machine.as_str();
    let Some(window) = ctx.rt.window.as_ref().filter(|_| !ctx.rt.dry_run) else { return Ok(true) };
    if ctx.prior.state(&step_id(KIND, name, Action::Reboot)) != StepState::Planned {
        return Ok(true);
    }
    let told = |c: &WindowClosed| {
        let message = format!(
            "{name}: waiting for the maintenance window \"{}\": it opens at {} (in {})",
            c.window, c.opens, c.wait
        );
        ctx.rt.events.send(Event::Notice { message });
    };
    match window.admit(&ctx.rt.cancel, told).await {
        Ok(go) => Ok(go),
        Err(closed) => {
            let reason = format!("{name} was not rebooted: {closed}");
            for s in m
                .steps
                .iter()
                .filter(|s| matches!(s.action, Action::Reboot | Action::WaitForBoot | Action::HealthChecks))
            {
                ctx.skip(&step_id(KIND, name, s.action), name, &reason)?;
            }
            ctx.set_outcome(name, MachineOutcome::Skipped, reason);
            Ok(false)
        }
    }
}

/// The `--only-if-needed` check; false (and the rest skipped) when the
/// machine already boots what it runs.
async fn needed(ctx: &Ctx<'_>, m: &MachinePlan) -> Result<bool, JournalError> {
    let name = m.machine.as_str();
    let id = step_id(KIND, name, Action::CheckReboot);
    if let Some(prior) = ctx.prior.get(&id).filter(|p| p.state == StepState::Finished) {
        ctx.already_done(&id, name);
        let needed = match prior.detail {
            StepDetail::RebootNeeded { needed, .. } => needed,
            _ => true,
        };
        if !needed {
            ctx.set_outcome(name, MachineOutcome::NotNeeded, "no reboot needed".into());
        }
        return Ok(needed);
    }
    let step = ctx.start(
        KIND,
        name,
        Action::CheckReboot,
        "compare booted and default kernel, initrd, modules".into(),
        StepDetail::None,
    )?;
    match ctx.remote(name).needs_reboot().await {
        Ok(Some(why)) => {
            ctx.finish(
                &step,
                name,
                Action::CheckReboot,
                why.clone(),
                StepDetail::RebootNeeded { needed: true, why: Some(why) },
            )?;
            Ok(true)
        }
        Ok(None) => {
            ctx.finish(
                &step,
                name,
                Action::CheckReboot,
                "no reboot needed".into(),
                StepDetail::RebootNeeded { needed: false, why: None },
            )?;
            for s in m.steps.iter().filter(|s| s.action != Action::CheckReboot) {
                ctx.skip(&step_id(KIND, name, s.action), name, "no reboot needed")?;
            }
            ctx.set_outcome(name, MachineOutcome::NotNeeded, "no reboot needed".into());
            Ok(false)
        }
        Err(e) => {
            ctx.fail(&step, name, Action::CheckReboot, e.to_string())?;
            Ok(false)
        }
    }
}

/// The reboot step; returns the boot id from before the reboot, or `None`
/// when the machine failed. Never reboots a machine whose boot id already
/// changed since a journaled reboot.
async fn reboot(
    ctx: &Ctx<'_>,
    name: &str,
    early: Option<String>,
    armed: Option<ArmedReboot>,
) -> Result<Option<String>, JournalError> {
    let id = step_id(KIND, name, Action::Reboot);
    let exec = ctx.exec(name);
    let prior = ctx.prior.get(&id).cloned();
    let journaled = prior.as_ref().and_then(|p| p.started.as_ref()).and_then(|d| d.boot_id_before()).map(String::from);
    if let Some(before) = &journaled {
        if prior.as_ref().map(|p| p.state) == Some(StepState::Finished) {
            ctx.already_done(&id, name);
            return Ok(Some(before.clone()));
        }
        // In flight: did it happen? A changed boot id says so; a reboot on
        // its way down gets a grace period to show before it is reissued.
        let grace =
            Instant::now() + REISSUE_GRACE.min(seconds(ctx.machine(name).metadata.orchestration.reboot_timeout));
        let step = ctx.start(
            KIND,
            name,
            Action::Reboot,
            "verify the interrupted reboot".into(),
            StepDetail::BootIdBefore { boot_id_before: before.clone() },
        )?;
        if let Ok(now) = exec.wait_for_boot(before, grace).await {
            ctx.finish(
                &step,
                name,
                Action::Reboot,
                format!("already rebooted (boot id {now})"),
                StepDetail::Verified { verified: true },
            )?;
            return Ok(Some(before.clone()));
        }
    }
    if ctx.rt.cancel.is_cancelled() {
        return Ok(None);
    }
    let read = match early {
        Some(id) => Ok(id),
        None => exec.boot_id().await,
    };
    let before = match (&journaled, read) {
        (Some(before), _) => before.clone(),
        (None, Ok(id)) => id,
        (None, Err(e)) => {
            let step = ctx.start(KIND, name, Action::Reboot, "read the boot id".into(), StepDetail::None)?;
            ctx.fail(&step, name, Action::Reboot, format!("cannot read the boot id before rebooting: {e}"))?;
            return Ok(None);
        }
    };
    let step = ctx.start(
        KIND,
        name,
        Action::Reboot,
        "reboot".into(),
        StepDetail::BootIdBefore { boot_id_before: before.clone() },
    )?;
    let user = &ctx.machine(name).metadata.target_user;
    let result = if user == "root" {
        // The session opened during rebootDelay, else a new one. A refusal
        // (the machine's reboot command failed, e.g. a block inhibitor) is
        // the answer, at once: reissuing it would only be refused again.
        let fired = match armed {
            Some(armed) => Some(armed.fire(ARMED_REBOOT_TIMEOUT).await),
            None => None,
        };
        match fired {
            Some(Ok(())) => {
                exec.close().await;
                Ok(())
            }
            Some(Err(refused @ ExecError::NonZeroExit { .. })) => Err(refused),
            // Not prepared, or its session was gone: a new one.
            _ => exec.reboot().await,
        }
    } else {
        // Privileged: through the escalation command; the connection
        // dropping as the machine goes down is the expected end.
        let cmd = ctx.rt.escalation.wrap(user, exec.reboot_command()).timeout(Duration::from_secs(20));
        let result = exec.run_ok(&Cmd { ..cmd }).await;
        exec.close().await;
        match result {
            Ok(_) | Err(ExecError::Connection { .. } | ExecError::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => {
            ctx.finish(
                &step,
                name,
                Action::Reboot,
                "reboot issued".into(),
                StepDetail::BootIdBefore { boot_id_before: before.clone() },
            )?;
            Ok(Some(before))
        }
        Err(e @ ExecError::NonZeroExit { .. }) => {
            let why = format!("the machine refused the reboot: {e}; nothing that depends on it was touched");
            ctx.fail(&step, name, Action::Reboot, why)?;
            Ok(None)
        }
        Err(e) => {
            ctx.fail(&step, name, Action::Reboot, e.to_string())?;
            Ok(None)
        }
    }
}

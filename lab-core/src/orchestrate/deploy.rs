//! Deploy: build and copy every system, then activate wave by wave per
//! `deployStrategy`, each machine health-gated, rolled back when it fails.
//!
//! - rolling and recreate: `switch` (profile, then switch-to-configuration),
//!   then the checks; a machine failing them goes back to its previous
//!   generation. A wave holds at most maxParallel rolling and blue-green
//!   machines, all in flight together, plus every recreate machine ready
//!   at the same time (their downtime does not matter: see
//!   `Fleet::deploy_waves`).
//! - blue-green: every blue-green machine of the wave is activated with
//!   `test`; only when all pass their checks does each new generation become
//!   the boot default (profile + `boot`); otherwise every one goes back.
//!
//! Activation runs detached on the machine (`systemd-run`), guarded by a
//! watchdog the machine runs itself unless lab reaches it again over a fresh
//! connection within confirmTimeout: the protocol is written down in
//! activation.rs (and docs/activation.md), confirming in confirm.rs.

use std::sync::Arc;

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::activation::{self, Ended};
use super::confirm::{self, Confirmed};
use super::ctx::Ctx;
use super::error::OrchestrateError;
use super::gate;
use super::report::MachineOutcome;
use crate::exec::CopyOptions;
use crate::health::seconds;
use crate::metadata::DeployStrategy;
use crate::plan::{step_id, Action, Goal, MachinePlan, Plan, PlanKind};
use crate::remote::{gc_root, Activated, Rollback, Toolset, UnitState, Units};
use crate::store::journal::{JournalError, StepState};
use crate::store::now_ms;
use crate::store::record::StepDetail;

/// Closures copied at once.
const COPY_PARALLEL: usize = 8;
const KIND: PlanKind = PlanKind::Deploy;

// Naming the units is the deploy's part of the protocol (see activation.rs).
impl Units {
    fn new(run_id: &str, index: usize, retry: bool) -> Self {
        let run: String = run_id.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
        // A retried activation (resume) must never meet the units of an
        // earlier attempt; a first attempt keeps names predictable.
        let tag = match retry {
            false => format!("{run}-{index}"),
            true => format!("{run}-{index}-{}", now_ms() % 1_000_000),
        };
        Units {
            switch: format!("lab-switch-{tag}"),
            watchdog: format!("lab-rollback-{tag}"),
            confirm: format!("lab-confirm-{tag}"),
            undo: format!("lab-undo-{tag}"),
        }
    }
}

/// Builds (one nix process, or on each machine) and copies every system not
/// already there, before any machine is touched.
pub(super) async fn prepare_machines(ctx: &Ctx<'_>, plan: &Plan) -> Result<(), OrchestrateError> {
    let names: Vec<&str> = plan.machines().map(|(_, m)| m.machine.as_str()).collect();
    let done = |name: &str, action| ctx.prior.state(&step_id(KIND, name, action)) == StepState::Finished;
    if plan.options.build_on_target {
        let runs = names.iter().map(|name| build_on_target(ctx, name, done(name, Action::Build)));
        join_all(runs).await.into_iter().collect::<Result<Vec<()>, JournalError>>()?;
        return Ok(());
    }
    let todo: Vec<&str> = names.iter().copied().filter(|n| !done(n, Action::Build)).collect();
    let mut steps = Vec::new();
    for name in &names {
        if !todo.contains(name) {
            ctx.already_done(&step_id(KIND, name, Action::Build), name);
        }
    }
    for name in &todo {
        let system = &ctx.prepared.systems[*name];
        let detail = StepDetail::Build { system: system.out_path.clone(), drv: system.drv_path.clone() };
        steps.push(ctx.start(KIND, name, Action::Build, format!("build {}", system.out_path), detail)?);
    }
    if !todo.is_empty() {
        let builder =
            ctx.rt.builder.as_ref().ok_or_else(|| {
                crate::build::BuildError::NotBuildable("a deploy needs a builder; none was given".into())
            })?;
        let systems: Vec<_> = todo.iter().map(|n| ctx.prepared.systems[*n].clone()).collect();
        let result = builder.build(&systems).await;
        for (name, step) in todo.iter().zip(&steps) {
            match &result {
                Ok(()) => ctx.finish(step, name, Action::Build, "built".into(), StepDetail::None)?,
                Err(e) => ctx.fail(step, name, Action::Build, e.to_string())?,
            }
        }
    }
    let permits = Arc::new(Semaphore::new(COPY_PARALLEL));
    let copies = names.iter().filter(|n| ctx.outcome(n).is_none()).map(|name| {
        let permits = permits.clone();
        async move {
            let _permit = permits.acquire().await.ok();
            copy(ctx, name, done(name, Action::Copy)).await
        }
    });
    join_all(copies).await.into_iter().collect::<Result<Vec<()>, JournalError>>()?;
    Ok(())
}

async fn copy(ctx: &Ctx<'_>, name: &str, done: bool) -> Result<(), JournalError> {
    let id = step_id(KIND, name, Action::Copy);
    if done {
        ctx.already_done(&id, name);
        return Ok(());
    }
    if ctx.rt.cancel.is_cancelled() {
        return Ok(());
    }
    let system = &ctx.prepared.systems[name].out_path;
    let step =
        ctx.start(KIND, name, Action::Copy, format!("copy {system}"), StepDetail::System { system: system.clone() })?;
    // Rooted before the copy: a garbage collection on the machine (a
    // scheduled nix.gc) between copy and activation must not take it.
    let root = gc_root(&ctx.run_id, system);
    if let Err(e) = ctx.remote(name).add_gc_root(&root, system).await {
        return ctx.fail(&step, name, Action::Copy, format!("{e} (while rooting the copy at {root}, before copying)"));
    }
    match ctx.exec(name).copy_closure(system, &CopyOptions::default()).await {
        Ok(()) => ctx.finish(&step, name, Action::Copy, "copied".into(), StepDetail::None),
        Err(e) => ctx.fail(&step, name, Action::Copy, e.to_string()),
    }
}

async fn build_on_target(ctx: &Ctx<'_>, name: &str, done: bool) -> Result<(), JournalError> {
    let id = step_id(KIND, name, Action::Build);
    if done {
        ctx.already_done(&id, name);
        return Ok(());
    }
    let system = &ctx.prepared.systems[name];
    let detail = StepDetail::Build { system: system.out_path.clone(), drv: system.drv_path.clone() };
    let step = ctx.start(KIND, name, Action::Build, format!("build {} on the machine", system.out_path), detail)?;
    let result = match ctx.exec(name).copy_closure(&system.drv_path, &CopyOptions::default()).await {
        Ok(()) => ctx.remote(name).realise(&system.drv_path).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ctx.finish(&step, name, Action::Build, "built on the machine".into(), StepDetail::None),
        Err(e) => ctx.fail(&step, name, Action::Build, e.to_string()),
    }
}

/// One wave: blue-green machines together, all-or-nothing; the others each
/// on their own.
pub(super) async fn wave(ctx: &Ctx<'_>, plan: &Plan, machines: &[&MachinePlan]) -> Result<(), JournalError> {
    let goal = plan.options.goal;
    let (blue_green, others): (Vec<&MachinePlan>, Vec<&MachinePlan>) =
        machines.iter().partition(|m| m.deploy_strategy == DeployStrategy::BlueGreen && goal.changes_running_system());
    let singles = join_all(others.iter().map(|m| single(ctx, goal, &m.machine)));
    let (singles, together) = tokio::join!(singles, blue_green_wave(ctx, goal, &blue_green));
    singles.into_iter().collect::<Result<Vec<()>, JournalError>>()?;
    together
}

/// Rolling and recreate: activate, check, roll back on failure.
async fn single(ctx: &Ctx<'_>, goal: Goal, name: &str) -> Result<(), JournalError> {
    let Some(activated) = activate(ctx, name, goal).await? else { return Ok(()) };
    if goal.changes_running_system() {
        if let Err(why) = gate::check(ctx, KIND, name).await? {
            rollback(ctx, name, &activated, format!("it failed its health checks: {why}")).await?;
            return Ok(());
        }
    }
    ctx.set_outcome(name, MachineOutcome::Done, String::new());
    Ok(())
}

/// Blue-green: test every machine, make all permanent only when all pass.
async fn blue_green_wave(ctx: &Ctx<'_>, goal: Goal, machines: &[&MachinePlan]) -> Result<(), JournalError> {
    if machines.is_empty() {
        return Ok(());
    }
    let tried = join_all(machines.iter().map(|m| async move {
        let Some(activated) = activate(ctx, &m.machine, Goal::Test).await? else {
            return Ok::<_, JournalError>((m.machine.as_str(), None, Some("its activation failed".to_string())));
        };
        let failure = gate::check(ctx, KIND, &m.machine).await?.err();
        Ok((m.machine.as_str(), Some(activated), failure))
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<_>, JournalError>>()?;
    let failed: Vec<&str> = tried.iter().filter(|(_, _, f)| f.is_some()).map(|(n, _, _)| *n).collect();
    if failed.is_empty() {
        let commits = tried.iter().filter_map(|(name, a, _)| a.as_ref().map(|a| commit(ctx, goal, name, a)));
        join_all(commits).await.into_iter().collect::<Result<Vec<()>, JournalError>>()?;
        return Ok(());
    }
    let undo = tried.iter().filter_map(|(name, activated, failure)| {
        let activated = activated.as_ref()?;
        let reason = match failure {
            Some(why) => format!("it failed its health checks: {why}"),
            None => format!("blue-green is all or nothing and {} of its wave failed", failed.join(", ")),
        };
        Some(rollback(ctx, name, activated, reason))
    });
    join_all(undo).await.into_iter().collect::<Result<Vec<()>, JournalError>>()?;
    Ok(())
}

/// Blue-green: the tested generation becomes the boot default.
async fn commit(ctx: &Ctx<'_>, goal: Goal, name: &str, activated: &Activated) -> Result<(), JournalError> {
    if goal != Goal::Switch {
        ctx.set_outcome(name, MachineOutcome::Done, String::new());
        return Ok(());
    }
    let id = step_id(KIND, name, Action::Commit);
    if ctx.prior.state(&id) == StepState::Finished {
        ctx.already_done(&id, name);
        ctx.set_outcome(name, MachineOutcome::Done, String::new());
        return Ok(());
    }
    let system = &ctx.prepared.systems[name].out_path;
    let step = ctx.start(
        KIND,
        name,
        Action::Commit,
        format!("boot default {system}"),
        StepDetail::System { system: system.clone() },
    )?;
    let remote = ctx.remote(name);
    let unit = format!("{}-commit", activated.units.switch);
    let result = match remote.set_profile(&activated.tools, system).await {
        Ok(()) => remote.start_activation(&activated.tools, &unit, system, Goal::Boot, None).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        return ctx.fail(&step, name, Action::Commit, format!("{e}; it runs the new generation until its next boot"));
    }
    let bound = activation::bound(ctx, name);
    let ended = activation::follow(ctx, name, &activated.tools, &unit, bound).await;
    match ended.failure("switch-to-configuration boot", bound) {
        None => {
            ctx.finish(&step, name, Action::Commit, "boot default".into(), StepDetail::None)?;
            ctx.set_outcome(name, MachineOutcome::Done, String::new());
            Ok(())
        }
        Some(why) => {
            ctx.fail(&step, name, Action::Commit, format!("{why}; it runs the new generation until its next boot"))
        }
    }
}

/// Activates `name`'s system with `goal`; `None` when it failed (journaled,
/// rolled back where something changed). The GC root that held the
/// system since its copy goes once the activation is over, whatever its end.
async fn activate(ctx: &Ctx<'_>, name: &str, goal: Goal) -> Result<Option<Activated>, JournalError> {
    let result = attempt(ctx, name, goal).await;
    let system = &ctx.prepared.systems[name].out_path;
    let _ = ctx.remote(name).remove_gc_root(&gc_root(&ctx.run_id, system)).await;
    result
}

/// Every attempt an interrupted run made at `name`'s activation, oldest
/// first, from the journal.
fn earlier_attempts(ctx: &Ctx<'_>, id: &str) -> Vec<Activated> {
    let Some(prior) = ctx.prior.get(id) else { return Vec::new() };
    let mut attempts: Vec<Activated> = Vec::new();
    for detail in &prior.starts {
        if let Some(a) = detail.activated() {
            if !attempts.iter().any(|b| b.units == a.units) {
                attempts.push(a.clone());
            }
        }
    }
    attempts
}

/// The watchdog timers of `attempts` and `more`, each once.
fn all_timers<'a>(attempts: impl IntoIterator<Item = &'a Activated>, more: &[String]) -> Vec<String> {
    let mut timers: Vec<String> = Vec::new();
    for t in attempts.into_iter().flat_map(|a| a.rollback.timers.iter()).chain(more) {
        if !timers.contains(t) {
            timers.push(t.clone());
        }
    }
    timers
}

/// Waits until no unit of an earlier attempt runs (its switch, its
/// rollback, a watchdog that fired), bounded by the activation bound, so
/// a resumed run never starts a second switch while one runs. `Err` names
/// what still runs.
async fn wait_for_earlier(ctx: &Ctx<'_>, name: &str, attempts: &[Activated]) -> Result<(), String> {
    let Some(last) = attempts.last() else { return Ok(()) };
    if ctx.rt.dry_run {
        return Ok(());
    }
    let mut units: Vec<String> = Vec::new();
    for a in attempts {
        units.extend([a.units.switch.clone(), a.units.undo.clone()]);
        units.extend(a.rollback.timers.iter().cloned());
    }
    let until = tokio::time::Instant::now() + activation::bound(ctx, name);
    loop {
        let running = ctx.remote(name).running(&last.tools, &units).await.map_err(|e| e.to_string())?;
        if running.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            return Err(format!(
                "units of an interrupted attempt still run after the activation bound: {}",
                running.join(", ")
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn attempt(ctx: &Ctx<'_>, name: &str, goal: Goal) -> Result<Option<Activated>, JournalError> {
    let id = step_id(KIND, name, Action::Activate);
    let system = ctx.prepared.systems[name].out_path.clone();
    let state = ctx.prior.get(&id).map(|p| p.state);
    let attempts = earlier_attempts(ctx, &id);
    let remote = ctx.remote(name);
    if let (Some(StepState::Finished), Some(activated)) = (state, attempts.last()) {
        ctx.already_done(&id, name);
        return Ok(Some(activated.clone()));
    }
    // In flight when the run stopped: if its switch runs or has ended, it
    // is followed to its end and judged (never a second switch); every
    // watchdog of every attempt must be gone before it is confirmed.
    if let (Some(StepState::Started), Some(last)) = (state, attempts.last()) {
        let polled = remote.poll(&last.tools, &last.units.switch).await;
        if matches!(polled, Ok(UnitState::Running | UnitState::Ended { .. })) {
            let mut activated = last.clone();
            activated.rollback.timers = all_timers(&attempts, &[]);
            let detail =
                StepDetail::Activation { system: system.clone(), goal, activated: Box::new(activated.clone()) };
            let step = ctx.start(KIND, name, Action::Activate, "follow the interrupted activation".into(), detail)?;
            return match goal.changes_running_system() {
                true => judge(ctx, name, goal, &step, &system, activated).await,
                false => follow_plain(ctx, name, goal, &step, activated).await,
            };
        }
    }
    let start_failed = |why: String| -> Result<Option<Activated>, JournalError> {
        let step = ctx.start(
            KIND,
            name,
            Action::Activate,
            format!("{} {system}", goal.name()),
            StepDetail::System { system: system.clone() },
        )?;
        ctx.fail(&step, name, Action::Activate, why)?;
        Ok(None)
    };
    if let Err(why) = wait_for_earlier(ctx, name, &attempts).await {
        return start_failed(why);
    }
    let tools = match remote.tools().await {
        // A dry run learns nothing from the machine; name what would be read.
        Ok(tools) if ctx.rt.dry_run && tools.current.is_empty() => {
            Toolset { current: "<current system>".into(), profile: "<current profile>".into(), ..tools }
        }
        Ok(tools) => tools,
        Err(e) => return start_failed(e.to_string()),
    };
    let index = ctx.prepared.fleet.machines().iter().position(|m| m.name == name).unwrap_or(0);
    let units = Units::new(&ctx.run_id, index, !attempts.is_empty());
    // What the machine ran before this run touched it: the first attempt's
    // record, when there was one (an interrupted attempt may have set the
    // profile already).
    let (profile, previous) = match attempts.first() {
        Some(first) => (first.rollback.profile.clone().unwrap_or(tools.profile.clone()), first.rollback.system.clone()),
        None => (tools.profile.clone(), tools.current.clone()),
    };
    let bound = activation::bound(ctx, name);
    let undo = Rollback {
        profile: goal.sets_profile().then_some(profile),
        system: previous,
        timers: all_timers(&attempts, &[units.watchdog.clone(), units.confirm.clone()]),
        goal,
        failed: Some(system.clone()),
        lock_wait: bound.as_secs(),
    };
    let earlier = all_timers(&attempts, &[]);
    let activated = Activated { tools, rollback: undo, units };
    let detail = StepDetail::Activation { system: system.clone(), goal, activated: Box::new(activated.clone()) };
    let step = ctx.start(KIND, name, Action::Activate, format!("{} {system}", goal.name()), detail)?;
    let tools = &activated.tools;
    let confirm_timeout = seconds(ctx.machine(name).metadata.orchestration.confirm_timeout);

    if !goal.changes_running_system() {
        let result = match goal.sets_profile() {
            true => remote.set_profile(tools, &system).await,
            false => Ok(()),
        };
        let result = match result {
            Ok(()) => remote.start_activation(tools, &activated.units.switch, &system, goal, None).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            ctx.fail(&step, name, Action::Activate, e.to_string())?;
            if goal.sets_profile() {
                rollback(ctx, name, &activated, format!("its activation did not start ({e})")).await?;
            }
            return Ok(None);
        }
        return follow_plain(ctx, name, goal, &step, activated).await;
    }

    // The safety net for an activation that never ends or a machine lost
    // mid-way; the short confirmation watchdog replaces it when activation ends.
    let net = bound + confirm_timeout;
    if let Err(e) = remote.arm_watchdog(tools, &activated.units.watchdog, net, &activated.rollback).await {
        ctx.fail(
            &step,
            name,
            Action::Activate,
            format!("cannot arm the rollback watchdog, so nothing was activated: {e}"),
        )?;
        return Ok(None);
    }
    // An interrupted attempt's watchdogs go once this attempt's is armed:
    // the machine is never without one, and none of them fires later on
    // the resumed deploy.
    if !earlier.is_empty() && !ctx.rt.dry_run {
        if let Err(e) = remote.disarm(tools, &earlier).await {
            ctx.fail(&step, name, Action::Activate, format!("cannot disarm an interrupted attempt's watchdogs: {e}"))?;
            rollback(ctx, name, &activated, format!("its interrupted attempt's watchdogs are still armed ({e})"))
                .await?;
            return Ok(None);
        }
    }
    if goal.sets_profile() {
        if let Err(e) = remote.set_profile(tools, &system).await {
            let _ = remote.disarm(tools, &activated.rollback.timers).await;
            ctx.fail(
                &step,
                name,
                Action::Activate,
                format!("cannot set the system profile, so nothing was activated: {e}"),
            )?;
            return Ok(None);
        }
    }
    let confirm = Some((activated.units.confirm.as_str(), confirm_timeout, &activated.rollback));
    match remote.start_activation(tools, &activated.units.switch, &system, goal, confirm).await {
        Ok(()) => {}
        // The connection dropped (or hung) while starting: the unit may
        // run; following it by its name tells.
        Err(e) if e.is_unreachable() || matches!(e, crate::exec::ExecError::Timeout { .. }) => {}
        Err(e) => {
            // systemd-run refused: nothing runs; put the watchdog and the
            // profile back now rather than leave the watchdog to do it.
            ctx.fail(&step, name, Action::Activate, format!("cannot start the activation: {e}"))?;
            rollback(ctx, name, &activated, format!("its activation did not start ({e})")).await?;
            return Ok(None);
        }
    }
    judge(ctx, name, goal, &step, &system, activated).await
}

/// Follows a `boot` activation (no running system changed, no watchdog)
/// to its end; a failure puts the previous boot default back.
async fn follow_plain(
    ctx: &Ctx<'_>,
    name: &str,
    goal: Goal,
    step: &str,
    activated: Activated,
) -> Result<Option<Activated>, JournalError> {
    let bound = activation::bound(ctx, name);
    let ended = activation::follow(ctx, name, &activated.tools, &activated.units.switch, bound).await;
    match ended.failure(&format!("switch-to-configuration {}", goal.name()), bound) {
        None => {
            ctx.finish(
                step,
                name,
                Action::Activate,
                goal.name().into(),
                StepDetail::Activated { activated: Box::new(activated.clone()) },
            )?;
            Ok(Some(activated))
        }
        Some(why) => {
            ctx.fail(step, name, Action::Activate, why.clone())?;
            if goal.sets_profile() {
                rollback(ctx, name, &activated, why).await?;
            }
            Ok(None)
        }
    }
}

/// Follows the activation unit to its end and acts on how it ended: a status
/// of 0 goes on to confirmation; any other end fails the machine, and lab
/// rolls it back, except past the bound, where the watchdog does.
async fn judge(
    ctx: &Ctx<'_>,
    name: &str,
    goal: Goal,
    step: &str,
    system: &str,
    activated: Activated,
) -> Result<Option<Activated>, JournalError> {
    let bound = activation::bound(ctx, name);
    let ended = activation::follow(ctx, name, &activated.tools, &activated.units.switch, bound).await;
    let what = format!("switch-to-configuration {}", goal.name());
    match (&ended, ended.failure(&what, bound)) {
        (_, None) => finish_activation(ctx, name, step, system, activated).await,
        (Ended::OutOfTime { .. }, Some(why)) => {
            let why = format!(
                "{why}; lab did not confirm it, so its watchdog {} rolls it back to {}; check it by hand",
                activated.units.watchdog, activated.rollback.system
            );
            ctx.fail(step, name, Action::Activate, why)?;
            Ok(None)
        }
        (_, Some(why)) => {
            ctx.fail(step, name, Action::Activate, why.clone())?;
            rollback(ctx, name, &activated, why).await?;
            Ok(None)
        }
    }
}

/// Confirms an activation over a fresh connection; journals the result.
async fn finish_activation(
    ctx: &Ctx<'_>,
    name: &str,
    step: &str,
    system: &str,
    activated: Activated,
) -> Result<Option<Activated>, JournalError> {
    match confirm::confirm(ctx, name, &activated, system).await {
        Confirmed::Yes => {
            ctx.finish(
                step,
                name,
                Action::Activate,
                "activated and confirmed".into(),
                StepDetail::Activated { activated: Box::new(activated.clone()) },
            )?;
            Ok(Some(activated))
        }
        Confirmed::StillArmed { error } => {
            let current = ctx.remote(name).current_system().await.unwrap_or_else(|e| format!("unknown ({e})"));
            if current == activated.rollback.system {
                let reason = format!("its watchdog rolled it back before lab confirmed the activation ({error})");
                let healthy = gate::recheck(ctx, name).await;
                ctx.rolled_back(step, name, reason, current, healthy)?;
            } else {
                ctx.fail(step, name, Action::Activate, format!("lab cannot confirm the activation: {error}"))?;
            }
            Ok(None)
        }
        Confirmed::RolledBack { current } => {
            let reason = format!("its watchdog rolled it back before lab confirmed the activation (it runs {current})");
            let healthy = gate::recheck(ctx, name).await;
            ctx.rolled_back(step, name, reason, current, healthy)?;
            Ok(None)
        }
        Confirmed::Unreachable { error, after } => {
            let timeout = ctx.machine(name).metadata.orchestration.confirm_timeout;
            let lost = format!(
                "lab could not reach it over a fresh connection within confirmTimeout ({timeout} s) after activation ({error})"
            );
            match after {
                Some(current) if current == activated.rollback.system => {
                    let healthy = gate::recheck(ctx, name).await;
                    ctx.rolled_back(step, name, format!("{lost}; its watchdog rolled it back"), current, healthy)?;
                }
                _ => ctx.fail(
                    step,
                    name,
                    Action::Activate,
                    format!(
                        "{lost}; its watchdog should roll it back to {}; check it by hand",
                        activated.rollback.system
                    ),
                )?,
            }
            Ok(None)
        }
    }
}

/// Puts `name` back on its previous generation (profile, then switch), in
/// a detached unit followed to its end, and checks it again.
async fn rollback(ctx: &Ctx<'_>, name: &str, activated: &Activated, reason: String) -> Result<(), JournalError> {
    let id = step_id(KIND, name, Action::Activate);
    let remote = ctx.remote(name);
    let previous = &activated.rollback.system;
    let tools = &activated.tools;
    let bound = activation::bound(ctx, name);
    let result = match remote.start_rollback(tools, &activated.units.undo, &activated.rollback).await {
        Ok(()) => Ok(activation::follow(ctx, name, tools, &activated.units.undo, bound).await),
        Err(e) => Err(e),
    };
    let current = remote.current_system().await;
    let failure = match &result {
        Ok(ended) => ended.failure("the rollback", bound),
        Err(e) => Some(e.to_string()),
    };
    match (failure, current) {
        // What the machine runs decides; a rollback whose switch reported
        // failed units still put the previous system back.
        (_, Ok(current)) if &current == previous || ctx.rt.dry_run => {
            let healthy = gate::recheck(ctx, name).await;
            ctx.rolled_back(&id, name, reason, previous.clone(), healthy)
        }
        (failure, current) => {
            let why = match (failure, current) {
                (_, Err(e)) => e.to_string(),
                (Some(why), Ok(current)) => format!("it runs {current}: {why}"),
                (None, Ok(current)) => format!("it runs {current}"),
            };
            ctx.fail(
                &id,
                name,
                Action::Activate,
                format!("{reason}; the rollback to {previous} failed too ({why}); fix it by hand"),
            )
        }
    }
}

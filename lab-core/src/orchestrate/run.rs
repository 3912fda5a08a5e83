//! The wave loop: phases, waves, machines; failures propagated to
//! dependents; stopping on request. What may go when is decided in
//! policy.rs; every step is journaled and announced through the recorder.

use futures_util::future::join_all;

use super::ctx::Ctx;
use super::error::OrchestrateError;
use super::events::{Event, HookEvent, MachineResult};
use super::policy;
use super::prepare::Prepared;
use super::recorder::Recorder;
use super::report::{MachineOutcome, Report};
use super::resume::Prior;
use super::runtime::Runtime;
use super::{deploy, reboot};
use crate::plan::{step_id, MachinePlan, PlanKind};
use crate::store::journal::{Entry, Journal, JournalError, StepState};
use crate::store::record::Outcome;

/// Executes a prepared run: `journal` is `None` for a dry run; `prior` is
/// what an interrupted run's journal says (empty for a new run).
pub async fn execute(
    prepared: &Prepared,
    rt: &Runtime,
    run_id: &str,
    journal: Option<Journal>,
    prior: Prior,
) -> Result<Report, OrchestrateError> {
    for machine in prepared.fleet.machines() {
        if !rt.executors.contains_key(&machine.name) || !rt.probers.contains_key(&machine.name) {
            return Err(OrchestrateError::NoExecutor(machine.name.clone()));
        }
    }
    let recorder = Recorder::new(run_id, journal, &rt.events, &rt.notify, rt.dry_run);
    let ctx = Ctx { prepared, rt, prior, recorder };
    let result = run_phases(&ctx).await;
    let interrupted = rt.cancel.is_cancelled();
    let mut machines = ctx.outcomes();
    policy::not_started(&mut machines, &prepared.fleet, interrupted);
    let outcome = policy::run_outcome(result.is_err(), interrupted, &machines);
    let report = Report { run_id: run_id.to_string(), outcome, machines };
    if outcome == Outcome::Failed {
        let event = HookEvent::RunFailed {
            run_id: run_id.to_string(),
            command: prepared.spec.kind.name().into(),
            summary: report.summary(),
            machines: report
                .machines
                .iter()
                .map(|(name, (outcome, reason))| {
                    (name.clone(), MachineResult { outcome: *outcome, reason: reason.clone() })
                })
                .collect(),
            error: result.as_ref().err().map(ToString::to_string),
        };
        ctx.notify(format!("the failed run {run_id}"), &event);
    }
    // Every step is over: only now is a slow hook waited for (bounded by
    // its timeout), so that exiting does not cut its delivery short.
    ctx.hooks_delivered().await;
    // A journal that can no longer be written must not hide the first error.
    let written = ctx.finish_run(Entry::RunFinished { outcome });
    if result.is_ok() {
        written?;
    }
    result?;
    rt.events.send(Event::RunFinished { run_id: run_id.to_string(), outcome, summary: report.summary() });
    Ok(report)
}

async fn run_phases(ctx: &Ctx<'_>) -> Result<(), OrchestrateError> {
    let budget = ctx.prepared.spec.failure_budget();
    for plan in &ctx.prepared.phases {
        if plan.kind == PlanKind::Deploy {
            deploy::prepare_machines(ctx, plan).await?;
        }
        for wave in &plan.waves {
            let names: Vec<&str> = wave.machines.iter().map(|m| m.machine.as_str()).collect();
            if let Some(reason) = policy::stop_reason(ctx.rt.cancel.is_cancelled(), ctx.failures(), budget) {
                // Interrupted runs leave the rest planned (resume does it);
                // failed runs record why it was not done.
                if !ctx.rt.cancel.is_cancelled() {
                    for m in &wave.machines {
                        skip_machine(ctx, plan.kind, m, &reason)?;
                    }
                }
                continue;
            }
            let mut runnable = Vec::new();
            for m in &wave.machines {
                if let Some((outcome, why)) = prior_failure(ctx, plan.kind, m) {
                    // Failed before the interruption: stays failed, not retried.
                    ctx.set_outcome(&m.machine, outcome, why);
                } else if let Some(outcome) =
                    ctx.outcome(&m.machine).filter(|o| *o != MachineOutcome::Done && *o != MachineOutcome::NotNeeded)
                {
                    let reason = format!("it did not complete an earlier phase ({outcome:?})");
                    skip_machine(ctx, plan.kind, m, &reason)?;
                } else if let Some(dep) = policy::blocked_by(&ctx.prepared.fleet, |n| ctx.outcome(n), &m.machine) {
                    let reason = format!("its dependency {dep} failed or was not done");
                    skip_machine(ctx, plan.kind, m, &reason)?;
                    ctx.set_outcome(&m.machine, MachineOutcome::Skipped, reason);
                } else if let Some(down) = policy::down_beside(&ctx.prepared.fleet, |n| ctx.outcome(n), &m.machine) {
                    let reason = format!(
                        "{down} failed and may be down, and this machine's criticality forbids being down beside it"
                    );
                    skip_machine(ctx, plan.kind, m, &reason)?;
                    ctx.set_outcome(&m.machine, MachineOutcome::Skipped, reason);
                } else {
                    runnable.push(m);
                }
            }
            if runnable.is_empty() {
                continue;
            }
            ctx.rt.events.send(Event::WaveStarted {
                phase: plan.kind,
                wave: wave.wave,
                machines: names.iter().map(|n| n.to_string()).collect(),
            });
            match plan.kind {
                PlanKind::Deploy => deploy::wave(ctx, plan, &runnable).await?,
                PlanKind::Reboot => {
                    let runs = runnable.iter().map(|m| reboot::machine(ctx, plan, m));
                    join_all(runs).await.into_iter().collect::<Result<Vec<()>, JournalError>>()?;
                }
            }
        }
    }
    Ok(())
}

/// How `m` ended in an earlier part of an interrupted run, if it failed.
fn prior_failure(ctx: &Ctx<'_>, kind: PlanKind, m: &MachinePlan) -> Option<(MachineOutcome, String)> {
    m.steps.iter().find_map(|s| {
        let prior = ctx.prior.get(&step_id(kind, &m.machine, s.action))?;
        let why = prior.detail.failure().unwrap_or_default().to_string();
        match prior.state {
            StepState::RolledBack => Some((MachineOutcome::RolledBack, why)),
            StepState::Failed => Some((MachineOutcome::Failed, why)),
            _ => None,
        }
    })
}

/// Records every not-yet-done step of `m` in `kind` as skipped.
fn skip_machine(ctx: &Ctx<'_>, kind: PlanKind, m: &MachinePlan, reason: &str) -> Result<(), JournalError> {
    for s in &m.steps {
        let step = step_id(kind, &m.machine, s.action);
        // Ended by an earlier run, or by this one (a build or copy done
        // ahead of its machine's turn): it stays as it ended.
        let done = policy::ended(ctx.prior.state(&step)) || ctx.has_ended(&step);
        if !done {
            ctx.skip(&step, &m.machine, reason)?;
        }
    }
    if ctx.outcome(&m.machine).is_none() {
        ctx.set_outcome(&m.machine, MachineOutcome::Skipped, reason.to_string());
    }
    Ok(())
}

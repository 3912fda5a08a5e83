//! The wave loop: phases, waves, machines; the journal written before every
//! action; failures propagated to dependents; stopping on request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::join_all;
use serde_json::{json, Value};

use super::cancel::CancelToken;
use super::error::OrchestrateError;
use super::events::{Event, Events};
use super::prepare::Prepared;
use super::report::{MachineOutcome, Outcome, Report};
use super::window_gate::RebootWindow;
use super::{deploy, reboot};
use crate::build::Builder;
use crate::exec::Executor;
use crate::health::Prober;
use crate::metadata::Criticality;
use crate::metadata::Machine;
use crate::notify::{HookOutcome, NotifyConfig};
use crate::plan::{step_id, Action, PlanKind};
use crate::remote::{Escalation, Remote};
use crate::store::journal::{Entry, Journal, JournalError, StepState};
use crate::store::resume::Prior;

/// What a run acts through: one executor and one prober per machine, the
/// builder, and where events go.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Each machine's executor, by name.
    pub executors: BTreeMap<String, Arc<dyn Executor>>,
    /// Each machine's health prober, by name.
    pub probers: BTreeMap<String, Arc<dyn ProberDebug>>,
    /// Builds the systems of a deploy.
    pub builder: Option<Arc<dyn Builder>>,
    /// How privileged commands run for non-root target users.
    pub escalation: Escalation,
    /// Where events go.
    pub events: Events,
    /// Stop request.
    pub cancel: CancelToken,
    /// Show, do not wait: delays and health waits pass at once (the
    /// executors are dry-run executors).
    pub dry_run: bool,
    /// Hooks told about a failed run and every rollback (the fleet's
    /// `lab.notify`); empty: none.
    pub notify: NotifyConfig,
    /// Reboots only inside this window (the fleet's `lab.rebootWindow`,
    /// unless `--ignore-window`); `None`: any time.
    pub window: Option<RebootWindow>,
}

/// A [`Prober`] that can be printed (for [`Runtime`]'s Debug).
pub trait ProberDebug: Prober + std::fmt::Debug {}
impl<T: Prober + std::fmt::Debug> ProberDebug for T {}

/// The shared state of one run while it executes.
pub(super) struct Ctx<'a> {
    pub prepared: &'a Prepared,
    pub rt: &'a Runtime,
    pub run_id: String,
    pub prior: Prior,
    journal: Option<Mutex<Journal>>,
    /// Steps this run has ended (finished, failed, skipped, rolled back).
    ended: Mutex<BTreeSet<String>>,
    outcomes: Mutex<BTreeMap<String, (MachineOutcome, String)>>,
    hooks: Mutex<Vec<Hook>>,
}

/// A notification on its way: what it is about, and its delivery.
type Hook = (String, tokio::task::JoinHandle<Vec<HookOutcome>>);

impl<'a> Ctx<'a> {
    pub fn machine(&self, name: &str) -> &'a Machine {
        // Every name in a plan comes from the prepared fleet.
        self.prepared.fleet.machine(name).expect("plan machines are fleet machines")
    }

    pub fn exec(&self, name: &str) -> &dyn Executor {
        self.rt.executors[name].as_ref()
    }

    pub fn remote(&self, name: &str) -> Remote<'_> {
        Remote {
            exec: self.exec(name),
            user: &self.machine(name).metadata.target_user,
            escalation: &self.rt.escalation,
        }
    }

    pub fn prober(&self, name: &str) -> &dyn Prober {
        self.rt.probers[name].as_ref()
    }

    fn record(&self, step: &str, machine: &str, state: StepState, detail: Value) -> Result<(), JournalError> {
        if ended(state) {
            self.ended.lock().unwrap_or_else(PoisonError::into_inner).insert(step.to_string());
        }
        let Some(journal) = &self.journal else { return Ok(()) };
        let entry = Entry::Step { step: step.into(), machine: machine.into(), state, detail };
        journal.lock().unwrap_or_else(PoisonError::into_inner).append(entry).map(drop)
    }

    /// Journals `started` (fsynced) and announces it: call right before acting.
    pub fn start(
        &self,
        kind: PlanKind,
        machine: &str,
        action: Action,
        message: String,
        detail: Value,
    ) -> Result<String, JournalError> {
        let step = step_id(kind, machine, action);
        self.record(&step, machine, StepState::Started, detail)?;
        self.rt.events.send(Event::StepStarted { step: step.clone(), machine: machine.into(), action, message });
        Ok(step)
    }

    /// Journals and announces a finished step.
    pub fn finish(
        &self,
        step: &str,
        machine: &str,
        action: Action,
        message: String,
        detail: Value,
    ) -> Result<(), JournalError> {
        self.record(step, machine, StepState::Finished, detail)?;
        self.rt.events.send(Event::StepFinished { step: step.into(), machine: machine.into(), action, message });
        Ok(())
    }

    /// Journals and announces a failed step; the machine failed.
    pub fn fail(&self, step: &str, machine: &str, action: Action, error: String) -> Result<(), JournalError> {
        self.record(step, machine, StepState::Failed, json!({ "error": error }))?;
        self.rt.events.send(Event::StepFailed {
            step: step.into(),
            machine: machine.into(),
            action,
            error: error.clone(),
        });
        self.set_outcome(machine, MachineOutcome::Failed, error);
        Ok(())
    }

    /// Journals and announces a rollback; the machine failed.
    pub fn rolled_back(
        &self,
        step: &str,
        machine: &str,
        reason: String,
        system: String,
        healthy: bool,
    ) -> Result<(), JournalError> {
        self.record(
            step,
            machine,
            StepState::RolledBack,
            json!({ "reason": reason, "system": system, "healthy": healthy }),
        )?;
        let event = json!({
            "event": "rollback", "runId": self.run_id, "machine": machine,
            "reason": reason, "system": system, "healthy": healthy,
        });
        self.notify(format!("the rollback of {machine}"), event);
        self.rt.events.send(Event::RolledBack { machine: machine.into(), reason: reason.clone(), system, healthy });
        self.set_outcome(machine, MachineOutcome::RolledBack, reason);
        Ok(())
    }

    /// Starts delivering `event` to the notification hooks, in the
    /// background: the run never waits for a hook (see [`execute`]).
    fn notify(&self, about: String, event: Value) {
        if self.rt.notify.is_empty() || self.rt.dry_run {
            return;
        }
        let hook = self.rt.notify.spawn(event);
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner).push((about, hook));
    }

    /// Waits for the hooks still delivering (each bounded by its timeout)
    /// and tells how each went.
    async fn hooks_delivered(&self) {
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(PoisonError::into_inner));
        for (about, hook) in hooks {
            let outcomes = hook.await.unwrap_or_else(|e| {
                vec![HookOutcome { hook: "hook".into(), delivered: false, error: Some(e.to_string()) }]
            });
            for o in outcomes {
                let message = match &o.error {
                    None => format!("notified the {} hook of {about}", o.hook),
                    Some(e) => format!("the {} hook was not told of {about}: {e}", o.hook),
                };
                self.rt.events.send(Event::Notice { message });
            }
        }
    }

    /// Journals and announces a step that does not run.
    pub fn skip(&self, step: &str, machine: &str, reason: &str) -> Result<(), JournalError> {
        self.record(step, machine, StepState::Skipped, json!({ "reason": reason }))?;
        self.rt.events.send(Event::Skipped { step: step.into(), machine: machine.into(), reason: reason.into() });
        Ok(())
    }

    /// A step the journal says is done: announced, not redone.
    pub fn already_done(&self, step: &str, machine: &str) {
        self.rt.events.send(Event::Skipped {
            step: step.into(),
            machine: machine.into(),
            reason: "already done".into(),
        });
    }

    pub fn set_outcome(&self, machine: &str, outcome: MachineOutcome, reason: String) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = outcomes.entry(machine.to_string()).or_insert((outcome, reason.clone()));
        // A failure is never overwritten by a later success of another
        // phase; a failure followed by its rollback reads as rolled back.
        let replace = match entry.0 {
            MachineOutcome::RolledBack => false,
            MachineOutcome::Failed => outcome == MachineOutcome::RolledBack,
            _ => true,
        };
        if replace {
            *entry = (outcome, reason);
        }
    }

    pub fn outcome(&self, machine: &str) -> Option<MachineOutcome> {
        self.outcomes.lock().unwrap_or_else(PoisonError::into_inner).get(machine).map(|o| o.0)
    }

    fn failures(&self) -> usize {
        let outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        outcomes.values().filter(|(o, _)| matches!(o, MachineOutcome::Failed | MachineOutcome::RolledBack)).count()
    }

    /// A failed machine that criticality forbids `machine` to be down
    /// beside: a failed machine may be down for good (it never came back, or
    /// its activation broke it), so under `--keep-going` nothing goes down
    /// while a critical machine is failed, a critical machine does not go
    /// down while any machine is failed, nor a high one while a machine of
    /// one of its groups is.
    fn down_beside(&self, machine: &str) -> Option<String> {
        let m = self.prepared.fleet.machine(machine)?;
        let level = m.metadata.orchestration.criticality_level;
        self.prepared.fleet.machines().iter().find_map(|other| {
            let failed = other.name != machine && self.outcome(&other.name) == Some(MachineOutcome::Failed);
            let shares_group = other.metadata.groups.iter().any(|g| m.metadata.groups.contains(g));
            let forbidden = other.metadata.orchestration.criticality_level == Criticality::Critical
                || level == Criticality::Critical
                || (level == Criticality::High && shares_group);
            (failed && forbidden).then(|| other.name.clone())
        })
    }

    /// True when a dependency of `machine` failed or was not done.
    fn blocked_by(&self, machine: &str) -> Option<String> {
        self.prepared.fleet.dependencies(machine).into_iter().find_map(|dep| match self.outcome(&dep.name) {
            Some(MachineOutcome::Done | MachineOutcome::NotNeeded) => None,
            Some(_) => Some(dep.name.clone()),
            None => None,
        })
    }
}

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
    let ctx = Ctx {
        prepared,
        rt,
        run_id: run_id.to_string(),
        prior,
        journal: journal.map(Mutex::new),
        ended: Mutex::new(BTreeSet::new()),
        outcomes: Mutex::new(BTreeMap::new()),
        hooks: Mutex::new(Vec::new()),
    };
    let result = run_phases(&ctx).await;
    let interrupted = rt.cancel.is_cancelled();
    let mut machines = ctx.outcomes.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for m in prepared.fleet.machines() {
        machines.entry(m.name.clone()).or_insert_with(|| {
            (MachineOutcome::NotStarted, if interrupted { "the run was stopped first".into() } else { String::new() })
        });
    }
    let failed = machines.values().any(|(o, _)| !matches!(o, MachineOutcome::Done | MachineOutcome::NotNeeded));
    let outcome = match (result.is_err(), interrupted, failed) {
        (false, _, false) => Outcome::Success,
        (false, true, _)
            if !machines.values().any(|(o, _)| matches!(o, MachineOutcome::Failed | MachineOutcome::RolledBack)) =>
        {
            Outcome::Interrupted
        }
        _ => Outcome::Failed,
    };
    let report = Report { run_id: run_id.to_string(), outcome, machines };
    if outcome == Outcome::Failed {
        let mut event = json!({
            "event": "run-failed", "runId": run_id, "command": prepared.spec.kind.name(),
            "summary": report.summary(),
            "machines": report.machines.iter()
                .map(|(name, (outcome, reason))| (name.clone(), json!({ "outcome": outcome, "reason": reason })))
                .collect::<serde_json::Map<String, Value>>(),
        });
        if let Err(e) = &result {
            event["error"] = json!(e.to_string());
        }
        ctx.notify(format!("the failed run {run_id}"), event);
    }
    // Every step is over: only now is a slow hook waited for (bounded by
    // its timeout), so that exiting does not cut its delivery short.
    ctx.hooks_delivered().await;
    if let Some(journal) = &ctx.journal {
        let end = Entry::RunFinished { outcome: outcome.name().into() };
        // A journal that can no longer be written must not hide the first error.
        let written = journal.lock().unwrap_or_else(PoisonError::into_inner).append(end);
        if result.is_ok() {
            written?;
        }
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
            let stop = if ctx.rt.cancel.is_cancelled() {
                Some("the run was stopped (Ctrl-C)".to_string())
            } else if ctx.failures() >= budget {
                Some(format!("the run stopped after {} failed machine(s)", ctx.failures()))
            } else {
                None
            };
            if let Some(reason) = stop {
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
                } else if let Some(dep) = ctx.blocked_by(&m.machine) {
                    let reason = format!("its dependency {dep} failed or was not done");
                    skip_machine(ctx, plan.kind, m, &reason)?;
                    ctx.set_outcome(&m.machine, MachineOutcome::Skipped, reason);
                } else if let Some(down) = ctx.down_beside(&m.machine) {
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
fn prior_failure(ctx: &Ctx<'_>, kind: PlanKind, m: &crate::plan::MachinePlan) -> Option<(MachineOutcome, String)> {
    m.steps.iter().find_map(|s| {
        let prior = ctx.prior.get(&step_id(kind, &m.machine, s.action))?;
        let why = |key: &str| prior.detail[key].as_str().unwrap_or_default().to_string();
        match prior.state {
            StepState::RolledBack => Some((MachineOutcome::RolledBack, why("reason"))),
            StepState::Failed => Some((MachineOutcome::Failed, why("error"))),
            _ => None,
        }
    })
}

/// Records every not-yet-done step of `m` in `kind` as skipped.
fn skip_machine(ctx: &Ctx<'_>, kind: PlanKind, m: &crate::plan::MachinePlan, reason: &str) -> Result<(), JournalError> {
    for s in &m.steps {
        let step = step_id(kind, &m.machine, s.action);
        // Ended by an earlier run, or by this one (a build or copy done
        // ahead of its machine's turn): it stays as it ended.
        let done =
            ended(ctx.prior.state(&step)) || ctx.ended.lock().unwrap_or_else(PoisonError::into_inner).contains(&step);
        if !done {
            ctx.skip(&step, &m.machine, reason)?;
        }
    }
    if ctx.outcome(&m.machine).is_none() {
        ctx.set_outcome(&m.machine, MachineOutcome::Skipped, reason.to_string());
    }
    Ok(())
}

/// True for the states a step ends in.
fn ended(state: StepState) -> bool {
    matches!(state, StepState::Finished | StepState::Skipped | StepState::Failed | StepState::RolledBack)
}

/// The journal entries of a new run: its start, then every step planned.
pub fn planned_entries(prepared: &Prepared, command: Vec<String>, detail: Value) -> Vec<Entry> {
    let mut entries = vec![Entry::RunStarted { plan_hash: prepared.hash.clone(), command, detail }];
    for plan in &prepared.phases {
        for (_, m) in plan.machines() {
            for s in &m.steps {
                entries.push(Entry::Step {
                    step: step_id(plan.kind, &m.machine, s.action),
                    machine: m.machine.clone(),
                    state: StepState::Planned,
                    detail: Value::Null,
                });
            }
        }
    }
    entries
}

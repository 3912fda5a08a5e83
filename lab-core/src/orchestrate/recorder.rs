//! The run recorder: every step transition journaled (fsynced) before it is
//! announced as an [`Event`], the machines' outcomes, and the notification
//! hooks under way. Its state sits behind one lock, never held across an
//! await.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::events::{Event, Events, HookEvent, SkipReason};
use super::policy::{self, Outcomes};
use super::report::MachineOutcome;
use crate::notify::{HookOutcome, NotifyConfig};
use crate::plan::{step_id, Action, PlanKind};
use crate::store::journal::{Entry, Journal, JournalError, StepState};
use crate::store::record::StepDetail;

/// A notification on its way: what it is about, and its delivery.
type Hook = (String, tokio::task::JoinHandle<Vec<HookOutcome>>);

/// What the run has recorded so far.
struct State {
    /// `None` for a dry run.
    journal: Option<Journal>,
    /// Steps this run has ended (finished, failed, skipped, rolled back).
    ended: BTreeSet<String>,
    outcomes: Outcomes,
    hooks: Vec<Hook>,
}

/// Journals, announces and remembers what one run does.
pub(super) struct Recorder<'a> {
    /// The run's id.
    pub run_id: String,
    events: &'a Events,
    notify: &'a NotifyConfig,
    dry_run: bool,
    state: Mutex<State>,
}

impl<'a> Recorder<'a> {
    /// A recorder for run `run_id` writing `journal` (`None`: a dry run,
    /// which writes nothing).
    pub fn new(
        run_id: &str,
        journal: Option<Journal>,
        events: &'a Events,
        notify: &'a NotifyConfig,
        dry_run: bool,
    ) -> Self {
        let state = State { journal, ended: BTreeSet::new(), outcomes: Outcomes::new(), hooks: Vec::new() };
        Recorder { run_id: run_id.to_string(), events, notify, dry_run, state: Mutex::new(state) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, step: &str, machine: &str, state: StepState, detail: StepDetail) -> Result<(), JournalError> {
        let mut s = self.state();
        if policy::ended(state) {
            s.ended.insert(step.to_string());
        }
        let Some(journal) = &mut s.journal else { return Ok(()) };
        let entry = Entry::Step { step: step.into(), machine: machine.into(), state, detail };
        journal.append(entry).map(drop)
    }

    /// Journals `started` (fsynced) and announces it: call right before acting.
    pub fn start(
        &self,
        kind: PlanKind,
        machine: &str,
        action: Action,
        message: String,
        detail: StepDetail,
    ) -> Result<String, JournalError> {
        let step = step_id(kind, machine, action);
        self.record(&step, machine, StepState::Started, detail)?;
        self.events.send(Event::StepStarted { step: step.clone(), machine: machine.into(), action, message });
        Ok(step)
    }

    /// Journals and announces a finished step.
    pub fn finish(
        &self,
        step: &str,
        machine: &str,
        action: Action,
        message: String,
        detail: StepDetail,
    ) -> Result<(), JournalError> {
        self.record(step, machine, StepState::Finished, detail)?;
        self.events.send(Event::StepFinished { step: step.into(), machine: machine.into(), action, message });
        Ok(())
    }

    /// Journals and announces a failed step; the machine failed.
    pub fn fail(&self, step: &str, machine: &str, action: Action, error: String) -> Result<(), JournalError> {
        self.record(step, machine, StepState::Failed, StepDetail::Failed { error: error.clone() })?;
        self.events.send(Event::StepFailed {
            step: step.into(),
            machine: machine.into(),
            action,
            error: error.clone(),
        });
        self.set_outcome(machine, MachineOutcome::Failed, error);
        Ok(())
    }

    /// Journals and announces a rollback, and tells the hooks; the machine failed.
    pub fn rolled_back(
        &self,
        step: &str,
        machine: &str,
        reason: String,
        system: String,
        healthy: bool,
    ) -> Result<(), JournalError> {
        let detail = StepDetail::RolledBack { reason: reason.clone(), system: system.clone(), healthy };
        self.record(step, machine, StepState::RolledBack, detail)?;
        let event = HookEvent::Rollback {
            run_id: self.run_id.clone(),
            machine: machine.into(),
            reason: reason.clone(),
            system: system.clone(),
            healthy,
        };
        self.notify(format!("the rollback of {machine}"), &event);
        self.events.send(Event::RolledBack { machine: machine.into(), reason: reason.clone(), system, healthy });
        self.set_outcome(machine, MachineOutcome::RolledBack, reason);
        Ok(())
    }

    /// Journals and announces a step that does not run.
    pub fn skip(&self, step: &str, machine: &str, reason: &str) -> Result<(), JournalError> {
        self.record(step, machine, StepState::Skipped, StepDetail::Skipped { reason: reason.into() })?;
        let reason = SkipReason::Because(reason.into());
        self.events.send(Event::Skipped { step: step.into(), machine: machine.into(), reason });
        Ok(())
    }

    /// A step the journal says is done: announced, not redone.
    pub fn already_done(&self, step: &str, machine: &str) {
        self.events.send(Event::Skipped {
            step: step.into(),
            machine: machine.into(),
            reason: SkipReason::AlreadyDone,
        });
    }

    /// True when this run ended `step` (a build or copy done ahead of its
    /// machine's turn).
    pub fn has_ended(&self, step: &str) -> bool {
        self.state().ended.contains(step)
    }

    /// Records how `machine` stands (see [`policy::set_outcome`] for which
    /// outcome wins).
    pub fn set_outcome(&self, machine: &str, outcome: MachineOutcome, reason: String) {
        policy::set_outcome(&mut self.state().outcomes, machine, outcome, reason);
    }

    /// How `machine` stands so far.
    pub fn outcome(&self, machine: &str) -> Option<MachineOutcome> {
        self.state().outcomes.get(machine).map(|o| o.0)
    }

    /// Every machine's outcome so far.
    pub fn outcomes(&self) -> Outcomes {
        self.state().outcomes.clone()
    }

    /// Machines failed or rolled back so far.
    pub fn failures(&self) -> usize {
        policy::failures(&self.state().outcomes)
    }

    /// Starts delivering `event` to the notification hooks, in the
    /// background: the run never waits for a hook (see
    /// [`execute`](super::execute)).
    pub fn notify(&self, about: String, event: &HookEvent) {
        if self.notify.is_empty() || self.dry_run {
            return;
        }
        let hook = self.notify.spawn(event.to_json());
        self.state().hooks.push((about, hook));
    }

    /// Waits for the hooks still delivering (each bounded by its timeout)
    /// and tells how each went.
    pub async fn hooks_delivered(&self) {
        let hooks = std::mem::take(&mut self.state().hooks);
        for (about, hook) in hooks {
            let outcomes = hook.await.unwrap_or_else(|e| {
                vec![HookOutcome { hook: "hook".into(), delivered: false, error: Some(e.to_string()) }]
            });
            for o in outcomes {
                let message = match &o.error {
                    None => format!("notified the {} hook of {about}", o.hook),
                    Some(e) => format!("the {} hook was not told of {about}: {e}", o.hook),
                };
                self.events.send(Event::Notice { message });
            }
        }
    }

    /// Journals the run's end; nothing for a dry run.
    pub fn finish_run(&self, entry: Entry) -> Result<(), JournalError> {
        match &mut self.state().journal {
            Some(journal) => journal.append(entry).map(drop),
            None => Ok(()),
        }
    }
}

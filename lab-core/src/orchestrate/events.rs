//! What a run reports as it goes: one typed [`Event`] per step transition,
//! sent on a tokio channel. lab-core only emits; frontends render (progress
//! bars, log lines, `--json` lines, the FFI).

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::report::Outcome;
use crate::plan::{Action, PlanKind};

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Event {
    /// The run began (or resumed).
    RunStarted {
        /// The run's id.
        run_id: String,
        /// Deploy, reboot or orchestrate.
        command: String,
        /// The plan's hash.
        plan_hash: String,
        /// Machines in the run.
        machines: usize,
        /// Steps in the run.
        steps: usize,
        /// True when continuing an interrupted run.
        resumed: bool,
        /// The journal file, for people and for `lab resume`.
        journal: String,
    },
    /// Something worth saying that changes nothing (a lock taken over).
    Notice {
        /// What.
        message: String,
    },
    /// A wave of machines began.
    WaveStarted {
        /// Deploy or reboot.
        phase: PlanKind,
        /// 1-based wave number within the phase.
        wave: usize,
        /// Its machines.
        machines: Vec<String>,
    },
    /// A step began.
    StepStarted {
        /// The step id (`deploy/web-1/activate`).
        step: String,
        /// The machine.
        machine: String,
        /// What the step does.
        action: Action,
        /// What it is doing, for people.
        message: String,
    },
    /// A step ended well.
    StepFinished {
        /// The step id.
        step: String,
        /// The machine.
        machine: String,
        /// What the step did.
        action: Action,
        /// What was observed.
        message: String,
    },
    /// A step failed.
    StepFailed {
        /// The step id.
        step: String,
        /// The machine.
        machine: String,
        /// What the step was doing.
        action: Action,
        /// Why it failed and what to do.
        error: String,
    },
    /// A machine went back to its previous generation.
    RolledBack {
        /// The machine.
        machine: String,
        /// Why.
        reason: String,
        /// The generation it runs again.
        system: String,
        /// Whether it passed its checks again afterwards.
        healthy: bool,
    },
    /// A step did not run.
    Skipped {
        /// The step id.
        step: String,
        /// The machine.
        machine: String,
        /// Why (a failed dependency, the run stopping, already done).
        reason: String,
    },
    /// A machine passed its health checks.
    MachineHealthy {
        /// The machine.
        machine: String,
        /// The step that checked it.
        step: String,
    },
    /// The run ended.
    RunFinished {
        /// The run's id.
        run_id: String,
        /// How it ended.
        outcome: Outcome,
        /// One line for people: what failed, what to do next.
        summary: String,
    },
}

/// Where a run sends its events. Sending never blocks the run; a frontend
/// that stopped listening does not stop it either.
#[derive(Debug, Clone)]
pub struct Events(Option<mpsc::UnboundedSender<Event>>);

impl Events {
    /// A sender and the receiver a frontend reads.
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events(Some(tx)), rx)
    }

    /// Events that go nowhere.
    pub fn none() -> Events {
        Events(None)
    }

    /// Sends `event`; a closed channel is ignored.
    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_camel_case_json() {
        let event = Event::StepFailed {
            step: "deploy/web/activate".into(),
            machine: "web".into(),
            action: Action::Activate,
            error: "boom".into(),
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"event":"step-failed","step":"deploy/web/activate","machine":"web","action":"activate","error":"boom"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    }
}

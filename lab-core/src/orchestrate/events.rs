//! What a run reports as it goes: one typed [`Event`] per step transition,
//! sent on a tokio channel. lab-core only emits; frontends render (progress
//! bars, log lines, `--json` lines, the FFI). What the notification hooks
//! receive is a [`HookEvent`], also built here (and in [`crate::status`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::report::MachineOutcome;
use crate::plan::{Action, PlanKind};
use crate::store::record::Outcome;

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
        /// Why: already done (by the interrupted run being resumed), or a
        /// failed dependency, the run stopping, nothing needed.
        reason: SkipReason,
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

/// Why a step did not run. In JSON, a string: `"already done"`, or the
/// reason in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SkipReason {
    /// The journal of the run being resumed says the step finished.
    AlreadyDone,
    /// Anything else, in words.
    Because(String),
}

const ALREADY_DONE: &str = "already done";

impl From<String> for SkipReason {
    fn from(text: String) -> Self {
        match text.as_str() {
            ALREADY_DONE => SkipReason::AlreadyDone,
            _ => SkipReason::Because(text),
        }
    }
}

impl From<SkipReason> for String {
    fn from(reason: SkipReason) -> Self {
        reason.to_string()
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::AlreadyDone => f.write_str(ALREADY_DONE),
            SkipReason::Because(why) => f.write_str(why),
        }
    }
}

/// What a notification hook receives, as one JSON object tagged `event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum HookEvent {
    /// A run failed.
    RunFailed {
        /// The run.
        run_id: String,
        /// Deploy, reboot or orchestrate.
        command: String,
        /// The report's one line.
        summary: String,
        /// Each machine's result, by name.
        machines: BTreeMap<String, MachineResult>,
        /// The error that stopped the run, if one did.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A machine was rolled back.
    Rollback {
        /// The run.
        run_id: String,
        /// The machine.
        machine: String,
        /// Why.
        reason: String,
        /// The generation it runs again.
        system: String,
        /// Whether it passed its checks again.
        healthy: bool,
    },
    /// `lab status --alert`: a reachable machine fails required checks.
    MachineUnhealthy {
        /// The machine.
        machine: String,
        /// The failing checks, with their messages.
        failing: Vec<String>,
        /// What else went wrong reading it.
        error: Option<String>,
    },
    /// `lab status --alert`: a machine did not answer.
    MachineUnreachable {
        /// The machine.
        machine: String,
        /// The failing checks (none: it was not reached).
        failing: Vec<String>,
        /// Why it did not answer.
        error: Option<String>,
    },
}

/// One machine's line in a [`HookEvent::RunFailed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineResult {
    /// Where it ended up.
    pub outcome: MachineOutcome,
    /// Why.
    pub reason: String,
}

impl HookEvent {
    /// The event as the hooks receive it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
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

    #[test]
    fn already_done_is_a_typed_reason_with_the_same_json() {
        let done = Event::Skipped { step: "s".into(), machine: "m".into(), reason: SkipReason::AlreadyDone };
        let json = serde_json::to_string(&done).unwrap();
        assert_eq!(json, r#"{"event":"skipped","step":"s","machine":"m","reason":"already done"}"#);
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), done);
        let other = SkipReason::Because("its dependency db failed or was not done".into());
        assert_eq!(serde_json::from_value::<SkipReason>(serde_json::to_value(&other).unwrap()).unwrap(), other);
    }

    #[test]
    fn hook_events_are_the_json_hooks_always_received() {
        let rollback = HookEvent::Rollback {
            run_id: "r".into(),
            machine: "web".into(),
            reason: "unhealthy".into(),
            system: "/nix/store/old".into(),
            healthy: true,
        };
        assert_eq!(
            rollback.to_json(),
            serde_json::json!({"event": "rollback", "runId": "r", "machine": "web", "reason": "unhealthy",
                               "system": "/nix/store/old", "healthy": true})
        );
        let machines = [("web".to_string(), MachineResult { outcome: MachineOutcome::Failed, reason: "x".into() })];
        let failed = HookEvent::RunFailed {
            run_id: "r".into(),
            command: "deploy".into(),
            summary: "failed: 1 failed".into(),
            machines: machines.into(),
            error: None,
        };
        assert_eq!(
            failed.to_json(),
            serde_json::json!({"event": "run-failed", "runId": "r", "command": "deploy", "summary": "failed: 1 failed",
                               "machines": {"web": {"outcome": "failed", "reason": "x"}}})
        );
        let down =
            HookEvent::MachineUnreachable { machine: "db".into(), failing: vec![], error: Some("timeout".into()) };
        assert_eq!(
            down.to_json(),
            serde_json::json!({"event": "machine-unreachable", "machine": "db", "failing": [], "error": "timeout"})
        );
    }
}

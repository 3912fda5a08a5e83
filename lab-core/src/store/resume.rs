//! Continuing an interrupted run from its journal.
//!
//! The journal says, per step, the last state made durable. A finished step
//! is never redone. A started step's effect is unknown, so the run verifies
//! it on the machine before retrying (see deploy.rs and reboot.rs): a boot
//! id that changed means the reboot happened (never reboot again), a
//! /run/current-system already on the new system means the activation
//! happened. The plan must be the same as when the run began, or resume
//! refuses and says what changed.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::dir::StateDir;
use super::journal::{self, Entry, Record, StepState};
use crate::orchestrate::prepare::Prepared;
use crate::orchestrate::spec::RunSpec;
use crate::orchestrate::OrchestrateError;

/// What the journal says about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorStep {
    /// Its last durable state.
    pub state: StepState,
    /// The detail of that record.
    pub detail: Value,
    /// The detail of its last `started` record (what was about to be done).
    pub started: Option<Value>,
    /// When it was last started, milliseconds since the epoch.
    pub started_ms: Option<u64>,
    /// The detail of every `started` record, oldest first: each attempt
    /// of the step (an activation's units are in them, so a resumed run
    /// finds every watchdog its interrupted attempts armed).
    pub starts: Vec<Value>,
}

/// Every step's journaled state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prior(BTreeMap<String, PriorStep>);

impl Prior {
    /// The steps' states from a journal's records.
    pub fn from_records(records: &[Record]) -> Prior {
        let mut steps: BTreeMap<String, PriorStep> = BTreeMap::new();
        for record in records {
            if let Entry::Step { step, state, detail, .. } = &record.entry {
                let entry = steps.entry(step.clone()).or_insert(PriorStep {
                    state: *state,
                    detail: Value::Null,
                    started: None,
                    started_ms: None,
                    starts: Vec::new(),
                });
                entry.state = *state;
                entry.detail = detail.clone();
                if *state == StepState::Started {
                    entry.started = Some(detail.clone());
                    entry.started_ms = Some(record.time_ms);
                    entry.starts.push(detail.clone());
                }
            }
        }
        Prior(steps)
    }

    /// What the journal says about `step`.
    pub fn get(&self, step: &str) -> Option<&PriorStep> {
        self.0.get(step)
    }

    /// The step's last state, `Planned` when the journal has none.
    pub fn state(&self, step: &str) -> StepState {
        self.get(step).map_or(StepState::Planned, |s| s.state)
    }
}

/// A run found in the state directory, ready to be checked and resumed.
#[derive(Debug, Clone)]
pub struct Interrupted {
    /// The run.
    pub run_id: String,
    /// What it was asked to do.
    pub spec: RunSpec,
    /// The hash of its plan.
    pub plan_hash: String,
    /// The journal's records.
    pub records: Vec<Record>,
    /// What the run started with (systems and metadata hashes).
    pub detail: Value,
}

/// Finds run `run_id` (or the latest run that did not end) and reads it.
/// Refuses a run that ended (success or failure) or whose journal is not a
/// lab run's.
pub fn find(state: &StateDir, run_id: Option<&str>) -> Result<Interrupted, OrchestrateError> {
    let runs = state.path().join("runs");
    let run_id = match run_id {
        Some(id) => {
            if !state.journal_path(id).exists() {
                return Err(OrchestrateError::NoSuchRun { run_id: id.into(), dir: runs });
            }
            id.to_string()
        }
        None => {
            let mut latest = None;
            for id in state.run_ids().into_iter().rev() {
                // A damaged journal cannot say whether its run ended:
                // passing over it would resume an older run, a guess.
                if finished_outcome(&journal::read(&state.journal_path(&id))?).is_none() {
                    latest = Some(id);
                    break;
                }
            }
            latest.ok_or(OrchestrateError::NothingToResume(runs))?
        }
    };
    let records = journal::read(&state.journal_path(&run_id))?;
    if let Some(outcome) = finished_outcome(&records) {
        return Err(OrchestrateError::Finished { run_id, outcome });
    }
    let bad = |reason: &str| OrchestrateError::BadJournal { run_id: run_id.clone(), reason: reason.into() };
    let Some((plan_hash, detail)) = records.iter().find_map(|r| match &r.entry {
        Entry::RunStarted { plan_hash, detail, .. } => Some((plan_hash.clone(), detail.clone())),
        _ => None,
    }) else {
        return Err(bad("it has no run-started record"));
    };
    let spec: RunSpec =
        serde_json::from_value(detail["spec"].clone()).map_err(|_| bad("its run-started record holds no run spec"))?;
    Ok(Interrupted { run_id, spec, plan_hash, records, detail })
}

/// How the run ended, if it did (an `interrupted` end can be resumed).
fn finished_outcome(records: &[Record]) -> Option<String> {
    match records.iter().rev().find_map(|r| match &r.entry {
        Entry::RunFinished { outcome } => Some(outcome.clone()),
        Entry::RunStarted { .. } => Some(String::new()),
        _ => None,
    }) {
        Some(outcome) if !outcome.is_empty() && outcome != "interrupted" => Some(outcome),
        _ => None,
    }
}

/// What the run-started record keeps for resume.
pub fn start_detail(prepared: &Prepared, resumed: bool) -> Value {
    let systems: BTreeMap<&str, &str> =
        prepared.systems.iter().map(|(n, s)| (n.as_str(), s.out_path.as_str())).collect();
    let metadata: BTreeMap<&str, String> = prepared
        .fleet
        .machines()
        .iter()
        .map(|m| {
            let text = m.to_json_value().to_string();
            (m.name.as_str(), crate::orchestrate::prepare::short_hash(&text))
        })
        .collect();
    json!({ "spec": prepared.spec, "systems": systems, "metadata": metadata, "resumed": resumed })
}

/// Refuses when the plan now differs from the journaled one, saying why.
pub fn check_unchanged(run: &Interrupted, prepared: &Prepared) -> Result<(), OrchestrateError> {
    if run.plan_hash == prepared.hash {
        return Ok(());
    }
    let now = start_detail(prepared, true);
    let mut why = Vec::new();
    for (key, what) in [("systems", "system"), ("metadata", "lab.machine metadata")] {
        let (Some(then), Some(now)) = (run.detail[key].as_object(), now[key].as_object()) else { continue };
        for (name, value) in now {
            match then.get(name) {
                None => why.push(format!("{name} was not in the run")),
                Some(old) if old != value => {
                    why.push(format!("the {what} of {name} changed ({old} then, {value} now)"))
                }
                _ => {}
            }
        }
        why.extend(then.keys().filter(|n| !now.contains_key(*n)).map(|n| format!("{n} is no longer in the fleet")));
    }
    why.dedup();
    if why.is_empty() {
        why.push("the plan's order or limits differ".into());
    }
    Err(OrchestrateError::PlanChanged {
        run_id: run.run_id.clone(),
        journaled: run.plan_hash.chars().take(12).collect(),
        now: prepared.hash.chars().take(12).collect(),
        why: why.join("; "),
    })
}

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

use super::error::OrchestrateError;
use super::prepare::Prepared;
use crate::store::dir::StateDir;
use crate::store::journal::{self, Entry, Record, StepState};
use crate::store::record::{Outcome, RunStart, StepDetail};
use crate::store::spec::RunSpec;

/// What the journal says about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorStep {
    /// Its last durable state.
    pub state: StepState,
    /// The detail of that record.
    pub detail: StepDetail,
    /// The detail of its last `started` record (what was about to be done).
    pub started: Option<StepDetail>,
    /// When it was last started, milliseconds since the epoch.
    pub started_ms: Option<u64>,
    /// The detail of every `started` record, oldest first: each attempt
    /// of the step (an activation's units are in them, so a resumed run
    /// finds every watchdog its interrupted attempts armed).
    pub starts: Vec<StepDetail>,
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
                    detail: StepDetail::None,
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
    pub detail: RunStart,
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
    let spec: RunSpec = detail.spec.clone().ok_or_else(|| bad("its run-started record holds no run spec"))?;
    Ok(Interrupted { run_id, spec, plan_hash, records, detail })
}

/// How the run ended, if it did (an `interrupted` end can be resumed).
fn finished_outcome(records: &[Record]) -> Option<String> {
    match records.iter().rev().find_map(|r| match &r.entry {
        Entry::RunFinished { outcome } => Some(Some(*outcome)),
        Entry::RunStarted { .. } => Some(None),
        _ => None,
    }) {
        Some(Some(outcome)) if outcome != Outcome::Interrupted => Some(outcome.name().to_string()),
        _ => None,
    }
}

/// What the run-started record keeps for resume.
pub fn start_record(prepared: &Prepared, resumed: bool) -> RunStart {
    let systems: BTreeMap<String, String> =
        prepared.systems.iter().map(|(n, s)| (n.clone(), s.out_path.clone())).collect();
    let metadata: BTreeMap<String, String> = prepared
        .fleet
        .machines()
        .iter()
        .map(|m| {
            let text = m.to_json_value().to_string();
            (m.name.clone(), super::prepare::short_hash(&text))
        })
        .collect();
    RunStart { spec: Some(prepared.spec.clone()), systems, metadata, resumed }
}

/// Refuses when the plan now differs from the journaled one, saying why.
pub fn check_unchanged(run: &Interrupted, prepared: &Prepared) -> Result<(), OrchestrateError> {
    if run.plan_hash == prepared.hash {
        return Ok(());
    }
    let now = start_record(prepared, true);
    let mut why = Vec::new();
    for (then, now, what) in
        [(&run.detail.systems, &now.systems, "system"), (&run.detail.metadata, &now.metadata, "lab.machine metadata")]
    {
        for (name, value) in now {
            match then.get(name) {
                None => why.push(format!("{name} was not in the run")),
                // Quoted, as the journal writes them.
                Some(old) if old != value => {
                    why.push(format!("the {what} of {name} changed ({old:?} then, {value:?} now)"))
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

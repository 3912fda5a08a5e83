//! A run as a timeline per machine, read from its journal: when each
//! machine was waiting, building, copying, activating, rebooting or
//! running its health checks, and the critical path — the chain of steps
//! that set the run's end time.
//!
//! Everything comes from the journal's step records: a step lasts from its
//! last `started` record to the `finished`, `failed` or `rolled-back`
//! record after it; a rollback recorded after its step had ended is a
//! segment of its own (the time spent going back). A run still going has
//! its open steps end at the last record. Times are milliseconds since the
//! Unix epoch, as the journal keeps them.
//!
//! The critical path needs no fleet: the journal is one ordered stream, so
//! for each step it shows which steps had ended before it started. The one
//! it waited for is the last of those to end; a reboot, the wait for boot
//! and the health checks wait only for their own machine's step before
//! them, any other step may wait for another machine (its wave for the one
//! before, an activation for the last copy).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::plan::Action;
use crate::store::dir::StateDir;
use crate::store::journal::{self, Entry, JournalError, Record, StepState};
use crate::store::record::{Outcome, StepDetail};

mod critical;
#[cfg(test)]
mod tests;

/// What a machine was doing during a segment of its timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Its turn had not come (its wave, a dependency, a copy slot), or it
    /// waited its rebootDelay.
    Waiting,
    /// Its system was being built.
    Building,
    /// Its closure was being copied to it.
    Copying,
    /// A configuration was being activated, committed or rolled back.
    Activating,
    /// It was checked for a needed reboot, rebooted, or waited for.
    Rebooting,
    /// Its health checks ran.
    Health,
}

impl Phase {
    /// The phase a step's action belongs to.
    pub fn of(action: Action) -> Phase {
        match action {
            Action::Wait => Phase::Waiting,
            Action::Build => Phase::Building,
            Action::Copy => Phase::Copying,
            Action::Activate | Action::Commit => Phase::Activating,
            Action::CheckReboot | Action::Reboot | Action::WaitForBoot => Phase::Rebooting,
            Action::HealthChecks => Phase::Health,
        }
    }
}

/// One stretch of a machine's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// What the machine was doing.
    pub phase: Phase,
    /// The step (`deploy/web/activate`); `None` for the time between steps.
    pub step: Option<String>,
    /// The step's action; `None` for the time between steps.
    pub action: Option<Action>,
    /// When it began.
    pub start_ms: u64,
    /// When it ended (for a step still running: the journal's last record).
    pub end_ms: u64,
    /// How the step stands (`started` while it runs); `None` between steps.
    pub state: Option<StepState>,
    /// True for the undoing of an activation (the step is `rolled-back`).
    pub rollback: bool,
    /// On the critical path.
    pub critical: bool,
    /// Why it failed or was rolled back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A step that did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedStep {
    /// The step.
    pub step: String,
    /// Why it did not run.
    pub reason: String,
}

/// One machine's part of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineTimeline {
    /// The machine.
    pub machine: String,
    /// Its segments, in time order, the gaps between steps as `waiting`.
    pub segments: Vec<Segment>,
    /// Its steps that were skipped.
    pub skipped: Vec<SkippedStep>,
    /// Its steps still only planned (an interrupted or running run).
    pub planned: Vec<String>,
}

/// A run from its journal, per machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// The run.
    pub run_id: String,
    /// What was run (`["deploy", "--on", "@web"]`).
    pub command: Vec<String>,
    /// Its first record.
    pub started_ms: u64,
    /// Its run-finished record; `None` while it runs or when interrupted hard.
    pub finished_ms: Option<u64>,
    /// How it ended, when it did.
    pub outcome: Option<Outcome>,
    /// Its last record.
    pub last_record_ms: u64,
    /// The machines, sorted by name.
    pub machines: Vec<MachineTimeline>,
    /// The steps of the critical path, first to last.
    pub critical_path: Vec<String>,
}

/// Why a timeline cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// The journal cannot be read or trusted.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The run has no journal in the state directory.
    #[error("no run {run_id} in {}: `lab serve` and the runs list show the runs it holds", path.display())]
    NoSuchRun {
        /// The run asked for.
        run_id: String,
        /// Where its journal would be.
        path: PathBuf,
    },
    /// The journal holds no record.
    #[error("the journal of run {run_id} holds no record: the run never started; nothing to show")]
    Empty {
        /// The run.
        run_id: String,
    },
}

/// The timeline of run `run_id` from its journal in `state`.
pub fn read(state: &StateDir, run_id: &str) -> Result<Timeline, TimelineError> {
    let path = state.journal_path(run_id);
    // A run id is a file name: nothing that walks out of runs/.
    let plain = !run_id.is_empty() && run_id.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if !plain || run_id.starts_with('.') || !path.is_file() {
        return Err(TimelineError::NoSuchRun { run_id: run_id.to_string(), path });
    }
    let records = journal::read(&path)?;
    Timeline::from_records(&records).ok_or_else(|| TimelineError::Empty { run_id: run_id.to_string() })
}

/// A step's span as read from the records, before it becomes segments.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) machine: String,
    pub(crate) step: String,
    pub(crate) action: Option<Action>,
    pub(crate) start: (u64, u64),
    /// (seq, time) of the record that ended it; `None` while it runs.
    pub(crate) end: Option<(u64, u64)>,
    pub(crate) state: StepState,
    pub(crate) rollback: bool,
    pub(crate) error: Option<String>,
}

impl Timeline {
    /// The timeline of a journal's records (as [`journal::read`] returns
    /// them); `None` when there are none.
    pub fn from_records(records: &[Record]) -> Option<Timeline> {
        let first = records.first()?;
        let last_ms = records.iter().map(|r| r.time_ms).max().unwrap_or(first.time_ms);
        let mut command = Vec::new();
        let (mut finished_ms, mut outcome) = (None, None);
        let mut spans: Vec<Span> = Vec::new();
        // The open or last span of each step, by id.
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        let mut machines: BTreeMap<String, MachineTimeline> = BTreeMap::new();
        let mut last_state: BTreeMap<String, (String, StepState, StepDetail)> = BTreeMap::new();
        let mut previous = (first.seq, first.time_ms);
        for r in records {
            let at = (r.seq, r.time_ms);
            match &r.entry {
                Entry::RunStarted { command: c, .. } => {
                    if command.is_empty() {
                        command = c.clone();
                    }
                    // A resumption: the steps the interruption left open
                    // ended with the last record before it; the run is
                    // going again.
                    for span in spans.iter_mut().filter(|s| s.end.is_none()) {
                        span.end = Some(previous);
                    }
                    (finished_ms, outcome) = (None, None);
                }
                Entry::RunFinished { outcome: o } => (finished_ms, outcome) = (Some(r.time_ms), Some(*o)),
                Entry::Step { step, machine, state, detail } => {
                    machines.entry(machine.clone()).or_insert_with(|| MachineTimeline {
                        machine: machine.clone(),
                        segments: Vec::new(),
                        skipped: Vec::new(),
                        planned: Vec::new(),
                    });
                    last_state.insert(step.clone(), (machine.clone(), *state, detail.clone()));
                    match state {
                        StepState::Planned | StepState::Skipped => {}
                        StepState::Started => {
                            open.insert(step.clone(), spans.len());
                            spans.push(Span {
                                machine: machine.clone(),
                                step: step.clone(),
                                action: action_of(step),
                                start: at,
                                end: None,
                                state: StepState::Started,
                                rollback: false,
                                error: None,
                            });
                        }
                        StepState::Finished | StepState::Failed | StepState::RolledBack => {
                            let error = detail.failure().map(str::to_string);
                            match open.get(step).map(|&i| &mut spans[i]) {
                                Some(span) if span.end.is_none() => {
                                    span.end = Some(at);
                                    span.state = *state;
                                    span.error = error;
                                }
                                // Ended again after it had ended: an
                                // activation undone once its health checks
                                // failed. The undoing is its own segment,
                                // from the machine's last step to now.
                                _ => {
                                    let from = spans
                                        .iter()
                                        .filter(|s| &s.machine == machine)
                                        .filter_map(|s| s.end)
                                        .max()
                                        .unwrap_or(at);
                                    spans.push(Span {
                                        machine: machine.clone(),
                                        step: step.clone(),
                                        action: action_of(step),
                                        start: from,
                                        end: Some(at),
                                        state: *state,
                                        rollback: *state == StepState::RolledBack,
                                        error,
                                    });
                                }
                            }
                        }
                    }
                }
            }
            previous = at;
        }
        for (step, (machine, state, detail)) in last_state {
            let Some(m) = machines.get_mut(&machine) else { continue };
            match (state, detail) {
                (StepState::Skipped, StepDetail::Skipped { reason }) => m.skipped.push(SkippedStep { step, reason }),
                (StepState::Skipped, _) => m.skipped.push(SkippedStep { step, reason: String::new() }),
                (StepState::Planned, _) => m.planned.push(step),
                _ => {}
            }
        }
        let critical = critical::path(&spans);
        let critical_path = critical.iter().map(|&i| spans[i].step.clone()).collect();
        for (i, span) in spans.iter().enumerate() {
            let Some(m) = machines.get_mut(&span.machine) else { continue };
            m.segments.push(Segment {
                phase: span.action.map_or(Phase::Activating, Phase::of),
                step: Some(span.step.clone()),
                action: span.action,
                start_ms: span.start.1,
                end_ms: span.end.map_or(last_ms, |e| e.1),
                state: Some(span.state),
                rollback: span.rollback,
                critical: critical.contains(&i),
                error: span.error.clone(),
            });
        }
        for m in machines.values_mut() {
            m.segments.sort_by_key(|s| (s.start_ms, s.end_ms));
            m.segments = with_waiting(first.time_ms, std::mem::take(&mut m.segments));
        }
        Some(Timeline {
            run_id: first.run_id.clone(),
            command,
            started_ms: first.time_ms,
            finished_ms,
            outcome,
            last_record_ms: last_ms,
            machines: machines.into_values().collect(),
            critical_path,
        })
    }
}

/// The action a step id names (`deploy/web/activate` → activate).
fn action_of(step: &str) -> Option<Action> {
    let name = step.rsplit('/').next()?;
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// `segments` (sorted) with a `waiting` segment in each gap before and
/// between them, from the run's start.
fn with_waiting(run_start: u64, segments: Vec<Segment>) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segments.len() * 2);
    let mut at = run_start;
    for s in segments {
        if s.start_ms > at {
            out.push(Segment {
                phase: Phase::Waiting,
                step: None,
                action: None,
                start_ms: at,
                end_ms: s.start_ms,
                state: None,
                rollback: false,
                critical: false,
                error: None,
            });
        }
        at = at.max(s.end_ms);
        out.push(s);
    }
    out
}

//! A run's hold on its fleet: the lock, the journal, and the run id; for a
//! new run or one being resumed.

use std::path::PathBuf;

use super::error::OrchestrateError;
use super::prepare::Prepared;
use super::resume::{check_unchanged, start_record, Interrupted, Prior};
use crate::plan::step_id;
use crate::store::dir::{fleet_key, new_run_id, StateDir};
use crate::store::journal::{Entry, Journal, Record, StepState};
use crate::store::lock::{Holder, LockError, RunLock};
use crate::store::record::{RunStart, StepDetail};

/// A run holding its fleet's lock with its journal open.
#[derive(Debug)]
pub struct Session {
    /// The run's id.
    pub run_id: String,
    /// The lock, released when the session is dropped.
    pub lock: RunLock,
    /// The journal, to hand to [`execute`](super::execute).
    pub journal: Journal,
    /// What an interrupted run had done (empty for a new run).
    pub prior: Prior,
}

impl Session {
    /// Starts a new run of `prepared`: takes the fleet's lock, creates the
    /// journal, records the start and every planned step (one fsync).
    pub fn start(state: &StateDir, prepared: &Prepared, command: Vec<String>) -> Result<Session, OrchestrateError> {
        let run_id = new_run_id();
        let lock = RunLock::acquire(&state.lock_path(&fleet_key(&prepared.spec.source.describe())), &run_id)?;
        let mut journal = Journal::create(&state.journal_path(&run_id), &run_id)?;
        journal.append_all(planned_entries(prepared, command, start_record(prepared, false)))?;
        Ok(Session { run_id, lock, journal, prior: Prior::default() })
    }

    /// Resumes `run`, re-prepared as `prepared`: refuses when the plan
    /// changed; takes the lock under the run's own id; continues its journal.
    pub fn resume(state: &StateDir, run: &Interrupted, prepared: &Prepared) -> Result<Session, OrchestrateError> {
        check_unchanged(run, prepared)?;
        let lock = RunLock::acquire(&state.lock_path(&fleet_key(&prepared.spec.source.describe())), &run.run_id)?;
        let (mut journal, records) = Journal::reopen(&state.journal_path(&run.run_id))?;
        journal.append(Entry::RunStarted {
            plan_hash: prepared.hash.clone(),
            command: vec!["resume".into(), run.run_id.clone()],
            detail: start_record(prepared, true),
        })?;
        Ok(Session { run_id: run.run_id.clone(), lock, journal, prior: Prior::from_records(&records) })
    }

    /// The journal file.
    pub fn journal_path(&self) -> PathBuf {
        self.journal.path().to_path_buf()
    }
}

/// `lab unlock --force RUN_ID`: removes the lock `run_id` holds, whichever
/// fleet it is on.
pub fn force_unlock(state: &StateDir, run_id: &str) -> Result<Holder, OrchestrateError> {
    let dir = state.path().join("locks");
    let mut holders = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if let Some(holder) = RunLock::peek(&path) {
                if holder.run_id == run_id {
                    return RunLock::force_unlock(&path, run_id)?.ok_or(OrchestrateError::Lock(LockError::NotHolder {
                        path,
                        asked: run_id.into(),
                        holder: None,
                    }));
                }
                holders.push(holder);
            }
        }
    }
    Err(OrchestrateError::Lock(LockError::NotHolder { path: dir, asked: run_id.into(), holder: holders.pop() }))
}

/// Records of a journal, for status views.
pub fn read_journal(state: &StateDir, run_id: &str) -> Result<Vec<Record>, OrchestrateError> {
    Ok(crate::store::journal::read(&state.journal_path(run_id))?)
}

/// The journal entries of a new run: its start, then every step planned.
pub fn planned_entries(prepared: &Prepared, command: Vec<String>, detail: RunStart) -> Vec<Entry> {
    let mut entries = vec![Entry::RunStarted { plan_hash: prepared.hash.clone(), command, detail }];
    for plan in &prepared.phases {
        for (_, m) in plan.machines() {
            for s in &m.steps {
                entries.push(Entry::Step {
                    step: step_id(plan.kind, &m.machine, s.action),
                    machine: m.machine.clone(),
                    state: StepState::Planned,
                    detail: StepDetail::None,
                });
            }
        }
    }
    entries
}

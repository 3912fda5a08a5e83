//! A run's journal read back as the [`Event`]s `--json` prints, for
//! frontends that watch runs made by another `lab` process (`lab serve`'s
//! event stream): [`events`] converts records, [`Follower`] tails the state
//! directory's journals and hands out what was added since it last looked.
//!
//! The journal keeps every step transition, not the words the run said: a
//! step's `message` is rebuilt from what its record holds (the system built,
//! the seconds waited), a run's `summary` from the steps' outcomes, and the
//! waves (never journaled) are not replayed.

use std::collections::{BTreeMap, BTreeSet};

use super::events::{Event, SkipReason};
use crate::store::dir::StateDir;
use crate::store::history::{parse_step, run_kind};
use crate::store::journal::{self, Entry, Record, StepState};
use crate::store::lock::RunLock;
use crate::store::record::{Outcome, StepDetail};

/// The events of `records[from..]`, reading earlier records for context
/// (a run's size at its start); `journal` is the journal's path, as
/// [`Event::RunStarted`] names it.
pub fn events(records: &[Record], from: usize, journal: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for record in records.iter().skip(from) {
        let run_id = record.run_id.clone();
        match &record.entry {
            Entry::RunStarted { plan_hash, command, detail } => {
                let planned: Vec<&Record> = records
                    .iter()
                    .filter(|r| matches!(&r.entry, Entry::Step { state: StepState::Planned, .. }))
                    .collect();
                let machines: BTreeSet<&str> = planned
                    .iter()
                    .filter_map(|r| match &r.entry {
                        Entry::Step { machine, .. } => Some(machine.as_str()),
                        _ => None,
                    })
                    .collect();
                out.push(Event::RunStarted {
                    run_id,
                    command: run_kind(command, detail),
                    plan_hash: plan_hash.clone(),
                    machines: machines.len(),
                    steps: planned.len(),
                    resumed: detail.resumed,
                    journal: journal.to_string(),
                });
            }
            Entry::Step { step, machine, state, detail } => {
                let Some((_, action)) = parse_step(step) else { continue };
                let (step, machine) = (step.clone(), machine.clone());
                match state {
                    StepState::Planned => {}
                    StepState::Started => {
                        out.push(Event::StepStarted { step, machine, action, message: started_message(detail) })
                    }
                    StepState::Finished => {
                        let healthy = matches!(detail, StepDetail::Healthy { healthy: true });
                        out.push(Event::StepFinished {
                            step: step.clone(),
                            machine: machine.clone(),
                            action,
                            message: finished_message(detail),
                        });
                        if healthy {
                            out.push(Event::MachineHealthy { machine, step });
                        }
                    }
                    StepState::Failed => out.push(Event::StepFailed {
                        step,
                        machine,
                        action,
                        error: detail.failure().unwrap_or("failed").to_string(),
                    }),
                    StepState::RolledBack => {
                        let (reason, system, healthy) = match detail {
                            StepDetail::RolledBack { reason, system, healthy } => {
                                (reason.clone(), system.clone(), *healthy)
                            }
                            _ => ("rolled back".to_string(), String::new(), false),
                        };
                        out.push(Event::RolledBack { machine, reason, system, healthy });
                    }
                    StepState::Skipped => {
                        let reason = match detail {
                            StepDetail::Skipped { reason } => reason.clone(),
                            _ => "skipped".to_string(),
                        };
                        out.push(Event::Skipped { step, machine, reason: SkipReason::from(reason) });
                    }
                }
            }
            Entry::RunFinished { outcome } => {
                out.push(Event::RunFinished { run_id, outcome: *outcome, summary: summary(records, *outcome) })
            }
        }
    }
    out
}

fn started_message(detail: &StepDetail) -> String {
    match detail {
        StepDetail::Build { system, .. } => format!("building {system}"),
        StepDetail::System { system } => system.clone(),
        StepDetail::Activation { system, goal, .. } => {
            format!(
                "{} {system}",
                serde_json::to_value(goal).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
            )
        }
        StepDetail::Delay { seconds } => format!("waiting {seconds} s"),
        StepDetail::BootIdBefore { boot_id_before } => format!("boot id before: {boot_id_before}"),
        _ => String::new(),
    }
}

fn finished_message(detail: &StepDetail) -> String {
    match detail {
        StepDetail::Healthy { .. } => "healthy".into(),
        StepDetail::BootId { boot_id } => format!("back, boot id {boot_id}"),
        StepDetail::RebootNeeded { needed: false, .. } => "no reboot needed".into(),
        StepDetail::RebootNeeded { needed: true, why } => format!("reboot needed: {}", why.as_deref().unwrap_or("")),
        StepDetail::Verified { .. } => "the reboot was done".into(),
        _ => "done".into(),
    }
}

/// One line from the steps' outcomes: `success: 3 steps finished`.
fn summary(records: &[Record], outcome: Outcome) -> String {
    let mut last: BTreeMap<&str, StepState> = BTreeMap::new();
    for r in records {
        if let Entry::Step { step, state, .. } = &r.entry {
            last.insert(step, *state);
        }
    }
    let count = |s: StepState| last.values().filter(|v| **v == s).count();
    format!(
        "{}: {} steps finished, {} failed, {} rolled back, {} skipped",
        outcome.name(),
        count(StepState::Finished),
        count(StepState::Failed),
        count(StepState::RolledBack),
        count(StepState::Skipped)
    )
}

/// One run being followed: the records read so far.
#[derive(Debug, Clone, Default)]
struct Seen {
    len: u64,
    records: usize,
}

/// Tails a state directory's journals: what was added since the last look,
/// as events, and the events so far of the run in progress.
#[derive(Debug)]
pub struct Follower {
    state: StateDir,
    seen: BTreeMap<String, Seen>,
    /// The run that last wrote, and its events since it last (re)started.
    current: Option<(String, Vec<Event>)>,
}

impl Follower {
    /// A follower of `state`'s journals: what is written from now on is
    /// new; a run that holds its fleet's lock and has not ended is the run
    /// in progress, its events so far at hand.
    pub fn new(state: StateDir) -> Follower {
        let mut follower = Follower { state, seen: BTreeMap::new(), current: None };
        let running = follower.locked_runs();
        for run_id in follower.state.run_ids() {
            let path = follower.state.journal_path(&run_id);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let records = journal::read(&path).unwrap_or_default();
            if running.contains(&run_id) && !ended(&records) {
                let events = since_last_start(events(&records, 0, &path.display().to_string()));
                follower.current = Some((run_id.clone(), events));
            }
            follower.seen.insert(run_id, Seen { len, records: records.len() });
        }
        follower
    }

    /// The events journaled since the last call (or since [`Follower::new`]),
    /// runs in id order, each run's in journal order.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        for run_id in self.state.run_ids() {
            let path = self.state.journal_path(&run_id);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let seen = self.seen.entry(run_id.clone()).or_default();
            if meta.len() == seen.len {
                continue;
            }
            // A journal that does not read (yet) is tried again next time.
            let Ok(records) = journal::read(&path) else { continue };
            let new = events(&records, seen.records, &path.display().to_string());
            *seen = Seen { len: meta.len(), records: records.len() };
            if new.is_empty() {
                continue;
            }
            match &mut self.current {
                Some((current, so_far)) if *current == run_id => {
                    so_far.extend(new.iter().cloned());
                    *so_far = since_last_start(std::mem::take(so_far));
                }
                _ => {
                    let all = events(&records, 0, &path.display().to_string());
                    self.current = Some((run_id, since_last_start(all)));
                }
            }
            out.extend(new);
        }
        out
    }

    /// The events of the run in progress since it (re)started; empty when
    /// the last run that wrote has ended.
    pub fn in_progress(&self) -> Vec<Event> {
        match &self.current {
            Some((_, events)) if !matches!(events.last(), Some(Event::RunFinished { .. })) => events.clone(),
            _ => Vec::new(),
        }
    }

    /// The runs named by a lock file of the state directory.
    fn locked_runs(&self) -> BTreeSet<String> {
        let Ok(entries) = std::fs::read_dir(self.state.path().join("locks")) else { return BTreeSet::new() };
        entries.flatten().filter_map(|e| RunLock::peek(&e.path())).map(|h| h.run_id).collect()
    }
}

/// True when the run's last record is its end.
fn ended(records: &[Record]) -> bool {
    matches!(records.last().map(|r| &r.entry), Some(Entry::RunFinished { .. }))
}

/// The events from the last run start on.
fn since_last_start(mut events: Vec<Event>) -> Vec<Event> {
    if let Some(i) = events.iter().rposition(|e| matches!(e, Event::RunStarted { .. })) {
        events.drain(..i);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::store::journal::Journal;
    use crate::store::record::RunStart;

    fn step(step: &str, machine: &str, state: StepState, detail: StepDetail) -> Entry {
        Entry::Step { step: step.into(), machine: machine.into(), state, detail }
    }

    #[test]
    fn a_journal_replays_as_the_events_a_run_sends_and_the_follower_tails_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let path = state.journal_path("r1");
        let mut journal = Journal::create(&path, "r1").unwrap();
        journal
            .append_all(vec![
                Entry::RunStarted {
                    plan_hash: "h".into(),
                    command: vec!["deploy".into()],
                    detail: RunStart::default(),
                },
                step("deploy/web/activate", "web", StepState::Planned, StepDetail::None),
                step("deploy/web/health-checks", "web", StepState::Planned, StepDetail::None),
            ])
            .unwrap();
        let mut follower = Follower::new(state.clone());
        assert!(follower.in_progress().is_empty(), "no lock: not in progress");
        assert!(follower.poll().is_empty(), "what was there before is not new");

        journal.append(step("deploy/web/activate", "web", StepState::Started, StepDetail::None)).unwrap();
        let new = follower.poll();
        assert_eq!(
            new,
            vec![Event::StepStarted {
                step: "deploy/web/activate".into(),
                machine: "web".into(),
                action: Action::Activate,
                message: String::new()
            }]
        );
        assert_eq!(follower.in_progress().len(), 2, "the start and the step so far");
        journal.append(step("deploy/web/activate", "web", StepState::Finished, StepDetail::None)).unwrap();
        journal
            .append(step("deploy/web/health-checks", "web", StepState::Finished, StepDetail::Healthy { healthy: true }))
            .unwrap();
        journal.append(Entry::RunFinished { outcome: Outcome::Success }).unwrap();
        let new = follower.poll();
        let json: Vec<String> = new.iter().map(|e| serde_json::to_value(e).unwrap()["event"].to_string()).collect();
        assert_eq!(json, ["\"step-finished\"", "\"step-finished\"", "\"machine-healthy\"", "\"run-finished\""]);
        assert!(follower.in_progress().is_empty(), "the run ended");

        let all = events(&journal::read(&path).unwrap(), 0, "j");
        match &all[0] {
            Event::RunStarted { machines, steps, command, .. } => {
                assert_eq!((*machines, *steps, command.as_str()), (1, 2, "deploy"))
            }
            other => panic!("{other:?}"),
        }
        match all.last().unwrap() {
            Event::RunFinished { summary, .. } => {
                assert!(summary.starts_with("success: 2 steps finished"), "{summary}")
            }
            other => panic!("{other:?}"),
        }
    }
}

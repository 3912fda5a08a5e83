//! What the journals tell about the fleet's past, read in one pass: every
//! run (what it ran, when it started and ended, how), each machine's last
//! successful deploy and reboot, how many steps ended how, how long each
//! step took, and the rollbacks. `lab serve`'s runs list and metrics and
//! `lab status` read it; nothing here runs anything.

use std::collections::BTreeMap;

use serde::Serialize;

use super::dir::StateDir;
use super::journal::{self, Entry, Record, StepState};
use super::record::{Outcome, RunStart};
use crate::plan::Action;

/// One run, as its journal tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// What was run (credentials redacted when journaled), e.g. `["deploy", "--on", "web"]`.
    pub command: Vec<String>,
    /// `deploy`, `reboot` or `orchestrate`.
    pub kind: String,
    /// When it started, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// When it last ended; `None` while it runs (or when it stopped without
    /// recording an end, e.g. killed).
    pub finished_ms: Option<u64>,
    /// How it last ended.
    pub outcome: Option<Outcome>,
}

/// One machine's past, as the journals tell it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineHistory {
    /// When its last successful deploy ended (its activation finished and
    /// every deploy step after it finished), milliseconds since the epoch.
    pub last_deploy_ms: Option<u64>,
    /// When its last successful reboot ended (it came back and every reboot
    /// step after it finished), milliseconds since the epoch.
    pub last_reboot_ms: Option<u64>,
    /// Times it was rolled back.
    pub rollbacks: u64,
    /// The last step a run recorded for it (the newest run that acted on it wins).
    pub last_step: Option<LastStep>,
}

/// The last step a run recorded for a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastStep {
    /// The run.
    pub run_id: String,
    /// The step.
    pub step: String,
    /// How it stands.
    pub state: StepState,
}

/// Each journal's facts as last read, with the journal's length then, so a
/// reader that looks again and again (`lab serve`: each probe and scrape)
/// parses only the journals that changed.
#[derive(Debug, Default)]
pub struct HistoryCache(BTreeMap<String, (u64, History)>);

/// How long one step took: from its `started` record to its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDuration {
    /// What the step did.
    pub action: Action,
    /// Seconds.
    pub seconds: f64,
}

/// Everything the journals of a state directory tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Every run whose journal reads, oldest first.
    pub runs: Vec<RunSummary>,
    /// Every machine a journal names, by name.
    pub machines: BTreeMap<String, MachineHistory>,
    /// Steps that ended, by what they did and how they ended (finished,
    /// failed, rolled back or skipped).
    pub steps: BTreeMap<(Action, StepState), u64>,
    /// Every step that started and ended, in journal order.
    pub durations: Vec<StepDuration>,
    /// Each machine's system as the newest run that planned it evaluated
    /// it: (when that run started, milliseconds since the epoch; the system).
    pub systems: BTreeMap<String, (u64, String)>,
    /// Journals that could not be read, by run id, with why.
    pub unreadable: BTreeMap<String, String>,
}

impl History {
    /// Reads every journal of `state`. A journal that does not read is
    /// listed in [`History::unreadable`], not an error: the others still tell.
    pub fn read(state: &StateDir) -> History {
        History::read_cached(state, &mut HistoryCache::default())
    }

    /// [`History::read`], reading again only the journals whose length
    /// changed since `cache` last saw them.
    pub fn read_cached(state: &StateDir, cache: &mut HistoryCache) -> History {
        let ids = state.run_ids();
        let present: std::collections::BTreeSet<&String> = ids.iter().collect();
        cache.0.retain(|id, _| present.contains(id));
        let mut history = History::default();
        for run_id in &ids {
            let path = state.journal_path(run_id);
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if cache.0.get(run_id).is_none_or(|(seen, _)| *seen != len) {
                let mut one = History::default();
                match journal::read(&path) {
                    Ok(records) => one.add(run_id, &records),
                    Err(e) => {
                        one.unreadable.insert(run_id.clone(), e.to_string());
                    }
                }
                cache.0.insert(run_id.clone(), (len, one));
            }
            if let Some((_, one)) = cache.0.get(run_id) {
                history.merge(one);
            }
        }
        history
    }

    /// Adds what `later` tells (the history of runs after these).
    pub fn merge(&mut self, later: &History) {
        self.runs.extend(later.runs.iter().cloned());
        for (name, h) in &later.machines {
            let mine = self.machines.entry(name.clone()).or_default();
            mine.last_deploy_ms = mine.last_deploy_ms.max(h.last_deploy_ms);
            mine.last_reboot_ms = mine.last_reboot_ms.max(h.last_reboot_ms);
            mine.rollbacks += h.rollbacks;
            if h.last_step.is_some() {
                mine.last_step = h.last_step.clone();
            }
        }
        for (key, count) in &later.steps {
            *self.steps.entry(*key).or_default() += count;
        }
        self.durations.extend(later.durations.iter().copied());
        for (machine, (time, system)) in &later.systems {
            if self.systems.get(machine).is_none_or(|(mine, _)| mine <= time) {
                self.systems.insert(machine.clone(), (*time, system.clone()));
            }
        }
        self.unreadable.extend(later.unreadable.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// The runs, newest first.
    pub fn runs_newest_first(&self) -> Vec<RunSummary> {
        self.runs.iter().rev().cloned().collect()
    }

    /// The run that ended last (by its end time), if any did.
    pub fn last_finished(&self) -> Option<&RunSummary> {
        self.runs.iter().filter(|r| r.finished_ms.is_some()).max_by_key(|r| (r.finished_ms, r.run_id.clone()))
    }

    /// Adds the records of one run's journal.
    pub fn add(&mut self, run_id: &str, records: &[Record]) {
        let mut summary: Option<RunSummary> = None;
        let mut started: BTreeMap<&str, u64> = BTreeMap::new();
        // Per (phase, machine): the time and state of its last step record,
        // whether its key step (activate / wait-for-boot) finished, and
        // whether anything failed.
        let mut phases: BTreeMap<(&str, &str), Phase> = BTreeMap::new();
        for record in records {
            if let Entry::RunStarted { detail, .. } = &record.entry {
                for (machine, system) in &detail.systems {
                    let newest = self.systems.get(machine).is_none_or(|(time, _)| *time <= record.time_ms);
                    if newest {
                        self.systems.insert(machine.clone(), (record.time_ms, system.clone()));
                    }
                }
            }
            match &record.entry {
                Entry::RunStarted { command, detail, .. } => match &mut summary {
                    None => {
                        summary = Some(RunSummary {
                            run_id: run_id.to_string(),
                            command: command.clone(),
                            kind: run_kind(command, detail),
                            started_ms: record.time_ms,
                            finished_ms: None,
                            outcome: None,
                        })
                    }
                    // A resumption: the run runs again.
                    Some(s) => (s.finished_ms, s.outcome) = (None, None),
                },
                Entry::RunFinished { outcome } => {
                    if let Some(s) = &mut summary {
                        (s.finished_ms, s.outcome) = (Some(record.time_ms), Some(*outcome));
                    }
                }
                Entry::Step { step, machine, state, .. } => {
                    let Some((phase, action)) = parse_step(step) else { continue };
                    if *state == StepState::Planned {
                        continue;
                    }
                    if *state == StepState::Started {
                        started.insert(step, record.time_ms);
                    } else {
                        *self.steps.entry((action, *state)).or_default() += 1;
                        if let Some(start) = started.remove(step.as_str()) {
                            let seconds = record.time_ms.saturating_sub(start) as f64 / 1000.0;
                            self.durations.push(StepDuration { action, seconds });
                        }
                    }
                    let m = self.machines.entry(machine.clone()).or_default();
                    if *state == StepState::RolledBack {
                        m.rollbacks += 1;
                    }
                    m.last_step = Some(LastStep { run_id: run_id.to_string(), step: step.clone(), state: *state });
                    let p = phases.entry((phase, machine)).or_default();
                    p.last = Some((record.time_ms, *state));
                    p.key_done |=
                        *state == StepState::Finished && matches!(action, Action::Activate | Action::WaitForBoot);
                    p.failed |= matches!(state, StepState::Failed | StepState::RolledBack);
                }
            }
        }
        for ((phase, machine), p) in phases {
            let entry = self.machines.entry(machine.to_string()).or_default();
            let Some((time, StepState::Finished)) = p.last else { continue };
            if !p.key_done || p.failed {
                continue;
            }
            let slot = match phase {
                "deploy" => &mut entry.last_deploy_ms,
                "reboot" => &mut entry.last_reboot_ms,
                _ => continue,
            };
            *slot = (*slot).max(Some(time));
        }
        self.runs.extend(summary);
    }
}

/// The run's command, `deploy`, `reboot` or `orchestrate`: from its spec,
/// else the first word of its command line that names one.
pub fn run_kind(command: &[String], detail: &RunStart) -> String {
    if let Some(spec) = &detail.spec {
        return spec.kind.name().to_string();
    }
    let known = ["deploy", "reboot", "orchestrate"];
    command.iter().find(|w| known.contains(&w.as_str())).cloned().unwrap_or_default()
}

/// One machine's steps in one phase of one run.
#[derive(Debug, Default)]
struct Phase {
    last: Option<(u64, StepState)>,
    key_done: bool,
    failed: bool,
}

/// A step id's phase (`deploy`, `reboot`) and action: `deploy/web/activate`
/// is `("deploy", Activate)`.
pub fn parse_step(step: &str) -> Option<(&str, Action)> {
    let (phase, rest) = step.split_once('/')?;
    let (_, action) = rest.rsplit_once('/')?;
    let action = serde_json::from_value(serde_json::Value::String(action.to_string())).ok()?;
    Some((phase, action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::journal::Journal;
    use crate::store::record::StepDetail;

    fn step(step: &str, machine: &str, state: StepState) -> Entry {
        Entry::Step { step: step.into(), machine: machine.into(), state, detail: StepDetail::None }
    }

    fn write(state: &StateDir, run_id: &str, entries: Vec<Entry>) {
        let mut journal = Journal::create(&state.journal_path(run_id), run_id).unwrap();
        for entry in entries {
            journal.append(entry).unwrap();
        }
    }

    #[test]
    fn runs_steps_and_last_successes_from_real_journals() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let start = |cmd: &str| Entry::RunStarted {
            plan_hash: "h".into(),
            command: vec![cmd.into()],
            detail: RunStart::default(),
        };
        write(
            &state,
            "r1",
            vec![
                start("deploy"),
                step("deploy/web/activate", "web", StepState::Planned),
                step("deploy/web/activate", "web", StepState::Started),
                step("deploy/web/activate", "web", StepState::Finished),
                step("deploy/web/health-checks", "web", StepState::Started),
                step("deploy/web/health-checks", "web", StepState::Finished),
                step("deploy/db/activate", "db", StepState::Started),
                step("deploy/db/activate", "db", StepState::Finished),
                step("deploy/db/health-checks", "db", StepState::Started),
                step("deploy/db/health-checks", "db", StepState::RolledBack),
                Entry::RunFinished { outcome: Outcome::Failed },
            ],
        );
        write(
            &state,
            "r2",
            vec![
                Entry::RunStarted {
                    plan_hash: "h".into(),
                    command: vec!["reboot".into()],
                    detail: RunStart {
                        systems: [("db".into(), "/nix/store/db2".into())].into(),
                        ..RunStart::default()
                    },
                },
                step("reboot/db/reboot", "db", StepState::Started),
                step("reboot/db/reboot", "db", StepState::Finished),
                step("reboot/db/wait-for-boot", "db", StepState::Started),
                step("reboot/db/wait-for-boot", "db", StepState::Finished),
                step("reboot/web/reboot", "web", StepState::Started),
            ],
        );
        let history = History::read(&state);
        assert_eq!(history.runs.len(), 2);
        assert_eq!(history.runs[0].outcome, Some(Outcome::Failed));
        assert_eq!((history.runs[0].kind.as_str(), history.runs[1].kind.as_str()), ("deploy", "reboot"));
        assert_eq!(history.runs[1].finished_ms, None, "r2 has not ended");
        assert_eq!(history.last_finished().unwrap().run_id, "r1");
        assert_eq!(history.runs_newest_first()[0].run_id, "r2");
        let web = &history.machines["web"];
        assert!(web.last_deploy_ms.is_some() && web.last_reboot_ms.is_none(), "{web:?}");
        let db = &history.machines["db"];
        assert_eq!(db.last_deploy_ms, None, "rolled back: not a successful deploy");
        assert!(db.last_reboot_ms.is_some());
        assert_eq!(db.rollbacks, 1);
        let last = db.last_step.as_ref().unwrap();
        assert_eq!((last.run_id.as_str(), last.step.as_str()), ("r2", "reboot/db/wait-for-boot"));
        assert_eq!(web.last_step.as_ref().unwrap().state, StepState::Started, "r2 started its reboot");
        assert_eq!(history.steps[&(Action::Activate, StepState::Finished)], 2);
        assert_eq!(history.steps[&(Action::HealthChecks, StepState::RolledBack)], 1);
        assert!(!history.steps.contains_key(&(Action::Reboot, StepState::Started)));
        assert_eq!(history.systems["db"].1, "/nix/store/db2");
        assert!(!history.systems.contains_key("web"));
        assert_eq!(history.durations.len(), 6, "every step that started and ended");
    }

    #[test]
    fn the_cache_reads_again_only_what_changed_and_tells_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let start =
            Entry::RunStarted { plan_hash: "h".into(), command: vec!["deploy".into()], detail: RunStart::default() };
        write(&state, "r1", vec![start.clone(), step("deploy/a/activate", "a", StepState::Started)]);
        let mut cache = HistoryCache::default();
        assert_eq!(History::read_cached(&state, &mut cache), History::read(&state));
        // A journal that changed is read again; one that vanished is forgotten.
        let (mut journal, _) = Journal::reopen(&state.journal_path("r1")).unwrap();
        journal.append(step("deploy/a/activate", "a", StepState::Finished)).unwrap();
        journal.append(Entry::RunFinished { outcome: Outcome::Success }).unwrap();
        write(&state, "r2", vec![start, step("deploy/a/activate", "a", StepState::Skipped)]);
        let cached = History::read_cached(&state, &mut cache);
        assert_eq!(cached, History::read(&state));
        assert_eq!(cached.runs[0].outcome, Some(Outcome::Success));
        assert_eq!(cached.machines["a"].last_step.as_ref().unwrap().run_id, "r2");
        std::fs::remove_file(state.journal_path("r2")).unwrap();
        let cached = History::read_cached(&state, &mut cache);
        assert_eq!(cached.runs.len(), 1);
        assert_eq!(cache.0.len(), 1);
    }

    #[test]
    fn step_ids_parse() {
        assert_eq!(parse_step("deploy/web-1/activate"), Some(("deploy", Action::Activate)));
        assert_eq!(parse_step("reboot/a/wait-for-boot"), Some(("reboot", Action::WaitForBoot)));
        assert_eq!(parse_step("reboot/a/nonsense"), None);
        assert_eq!(parse_step("nothing"), None);
    }
}

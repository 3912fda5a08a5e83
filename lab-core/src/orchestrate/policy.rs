//! The run's scheduling decisions, as pure functions of the fleet, the
//! journal's states and the machines' outcomes so far: which machine may
//! go, which outcome wins, how the run ended. No I/O and no async, so each
//! rule is tested on its own (below) as well as through whole runs.

use std::collections::BTreeMap;

use super::report::MachineOutcome;
use crate::graph::Fleet;
use crate::metadata::Criticality;
use crate::store::journal::StepState;
use crate::store::record::Outcome;

/// Each machine's outcome so far, with its reason, by name.
pub(super) type Outcomes = BTreeMap<String, (MachineOutcome, String)>;

/// True for the states a step ends in.
pub(super) fn ended(state: StepState) -> bool {
    matches!(state, StepState::Finished | StepState::Skipped | StepState::Failed | StepState::RolledBack)
}

/// Records `outcome` for a machine over what it had: a failure is never
/// overwritten by a later success of another phase; a failure followed by
/// its rollback reads as rolled back.
pub(super) fn set_outcome(outcomes: &mut Outcomes, machine: &str, outcome: MachineOutcome, reason: String) {
    let entry = outcomes.entry(machine.to_string()).or_insert((outcome, reason.clone()));
    let replace = match entry.0 {
        MachineOutcome::RolledBack => false,
        MachineOutcome::Failed => outcome == MachineOutcome::RolledBack,
        _ => true,
    };
    if replace {
        *entry = (outcome, reason);
    }
}

/// Machines that failed or were rolled back.
pub(super) fn failures(outcomes: &Outcomes) -> usize {
    outcomes.values().filter(|(o, _)| matches!(o, MachineOutcome::Failed | MachineOutcome::RolledBack)).count()
}

/// Why the next wave does not start, if it does not: the run was stopped,
/// or it used up its failure budget.
pub(super) fn stop_reason(cancelled: bool, failures: usize, budget: usize) -> Option<String> {
    if cancelled {
        Some("the run was stopped (Ctrl-C)".to_string())
    } else if failures >= budget {
        Some(format!("the run stopped after {failures} failed machine(s)"))
    } else {
        None
    }
}

/// A failed machine that criticality forbids `machine` to be down beside:
/// a failed machine may be down for good (it never came back, or its
/// activation broke it), so under `--keep-going` nothing goes down while a
/// critical machine is failed, a critical machine does not go down while
/// any machine is failed, nor a high one while a machine of one of its
/// groups is.
pub(super) fn down_beside(
    fleet: &Fleet,
    outcome: impl Fn(&str) -> Option<MachineOutcome>,
    machine: &str,
) -> Option<String> {
    let m = fleet.machine(machine)?;
    let level = m.metadata.orchestration.criticality_level;
    fleet.machines().iter().find_map(|other| {
        let failed = other.name != machine && outcome(&other.name) == Some(MachineOutcome::Failed);
        let shares_group = other.metadata.groups.iter().any(|g| m.metadata.groups.contains(g));
        let forbidden = other.metadata.orchestration.criticality_level == Criticality::Critical
            || level == Criticality::Critical
            || (level == Criticality::High && shares_group);
        (failed && forbidden).then(|| other.name.clone())
    })
}

/// A dependency of `machine` that failed or was not done, if any.
pub(super) fn blocked_by(
    fleet: &Fleet,
    outcome: impl Fn(&str) -> Option<MachineOutcome>,
    machine: &str,
) -> Option<String> {
    fleet.dependencies(machine).into_iter().find_map(|dep| match outcome(&dep.name) {
        Some(MachineOutcome::Done | MachineOutcome::NotNeeded) => None,
        Some(_) => Some(dep.name.clone()),
        None => None,
    })
}

/// Every machine of `fleet` the run did not reach gets `NotStarted` (with
/// why, when the run was stopped).
pub(super) fn not_started(outcomes: &mut Outcomes, fleet: &Fleet, interrupted: bool) {
    for m in fleet.machines() {
        outcomes.entry(m.name.clone()).or_insert_with(|| {
            (MachineOutcome::NotStarted, if interrupted { "the run was stopped first".into() } else { String::new() })
        });
    }
}

/// How the run ended: success when every machine is done (or needed
/// nothing) and nothing went wrong; interrupted when it was stopped before
/// any machine failed; failed otherwise.
pub(super) fn run_outcome(errored: bool, interrupted: bool, machines: &Outcomes) -> Outcome {
    let failed = machines.values().any(|(o, _)| !matches!(o, MachineOutcome::Done | MachineOutcome::NotNeeded));
    match (errored, interrupted, failed) {
        (false, _, false) => Outcome::Success,
        (false, true, _) if failures(machines) == 0 => Outcome::Interrupted,
        _ => Outcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::metadata::parse_machine;

    /// `(name, dependencies, criticality, groups)`.
    fn fleet(machines: &[(&str, &[&str], &str, &[&str])]) -> Fleet {
        Fleet::new(machines.iter().map(|(name, deps, level, groups)| {
            let value = json!({
                "role": "r", "rebootOrder": 0, "dependencies": deps, "groups": groups,
                "orchestration": { "criticalityLevel": level },
            });
            parse_machine(name, value, None).unwrap()
        }))
        .unwrap()
    }

    fn outcomes(of: &[(&str, MachineOutcome)]) -> Outcomes {
        of.iter().map(|(n, o)| (n.to_string(), (*o, String::new()))).collect()
    }

    fn lookup(outcomes: &Outcomes) -> impl Fn(&str) -> Option<MachineOutcome> + '_ {
        |name| outcomes.get(name).map(|o| o.0)
    }

    #[test]
    fn a_failure_is_kept_and_only_its_rollback_replaces_it() {
        let mut o = Outcomes::new();
        set_outcome(&mut o, "a", MachineOutcome::Done, String::new());
        set_outcome(&mut o, "a", MachineOutcome::Failed, "boom".into());
        assert_eq!(o["a"], (MachineOutcome::Failed, "boom".into()), "a failure replaces a success");
        set_outcome(&mut o, "a", MachineOutcome::Done, String::new());
        assert_eq!(o["a"].0, MachineOutcome::Failed, "a later phase's success does not hide the failure");
        set_outcome(&mut o, "a", MachineOutcome::RolledBack, "undone".into());
        assert_eq!(o["a"], (MachineOutcome::RolledBack, "undone".into()));
        set_outcome(&mut o, "a", MachineOutcome::Failed, "again".into());
        assert_eq!(o["a"].0, MachineOutcome::RolledBack, "rolled back stays");
        assert_eq!(failures(&o), 1);
    }

    #[test]
    fn a_machine_is_blocked_by_a_dependency_that_did_not_end_well() {
        let f = fleet(&[("db", &[], "low", &[]), ("web", &["db"], "low", &[])]);
        assert_eq!(blocked_by(&f, lookup(&Outcomes::new()), "web"), None, "not yet run: not blocked");
        for (o, blocked) in [
            (MachineOutcome::Done, false),
            (MachineOutcome::NotNeeded, false),
            (MachineOutcome::Failed, true),
            (MachineOutcome::RolledBack, true),
            (MachineOutcome::Skipped, true),
        ] {
            let got = blocked_by(&f, lookup(&outcomes(&[("db", o)])), "web");
            assert_eq!(got.is_some(), blocked, "{o:?}");
        }
    }

    #[test]
    fn criticality_decides_who_may_be_down_beside_a_failed_machine() {
        let f = fleet(&[
            ("crit", &[], "critical", &[]),
            ("high", &[], "high", &["g"]),
            ("peer", &[], "low", &["g"]),
            ("other", &[], "low", &[]),
        ]);
        let failed = |name| outcomes(&[(name, MachineOutcome::Failed)]);
        // A failed critical machine keeps everything else up.
        assert_eq!(down_beside(&f, lookup(&failed("crit")), "other"), Some("crit".into()));
        // A critical machine does not go down beside any failed one.
        assert_eq!(down_beside(&f, lookup(&failed("other")), "crit"), Some("other".into()));
        // A high one not beside a failed machine of its groups, but beside others.
        assert_eq!(down_beside(&f, lookup(&failed("peer")), "high"), Some("peer".into()));
        assert_eq!(down_beside(&f, lookup(&failed("other")), "high"), None);
        // Low machines beside low ones: fine; a machine is never beside itself.
        assert_eq!(down_beside(&f, lookup(&failed("other")), "peer"), None);
        assert_eq!(down_beside(&f, lookup(&failed("crit")), "crit"), None);
        // Rolled back is back up: it forbids nothing.
        assert_eq!(down_beside(&f, lookup(&outcomes(&[("crit", MachineOutcome::RolledBack)])), "other"), None);
    }

    #[test]
    fn the_run_stops_when_asked_or_out_of_budget() {
        assert_eq!(stop_reason(false, 0, 1), None);
        assert_eq!(stop_reason(false, 1, 1).unwrap(), "the run stopped after 1 failed machine(s)");
        assert_eq!(stop_reason(true, 0, 1).unwrap(), "the run was stopped (Ctrl-C)");
        assert_eq!(stop_reason(false, 3, usize::MAX), None);
    }

    #[test]
    fn how_a_run_ended() {
        let f = fleet(&[("a", &[], "low", &[]), ("b", &[], "low", &[])]);
        let mut done = outcomes(&[("a", MachineOutcome::Done), ("b", MachineOutcome::NotNeeded)]);
        not_started(&mut done, &f, false);
        assert_eq!(run_outcome(false, false, &done), Outcome::Success);
        assert_eq!(run_outcome(true, false, &done), Outcome::Failed, "an error fails the run");
        assert_eq!(run_outcome(false, true, &done), Outcome::Success, "stopped after everything was done");

        let mut stopped = outcomes(&[("a", MachineOutcome::Done)]);
        not_started(&mut stopped, &f, true);
        assert_eq!(stopped["b"], (MachineOutcome::NotStarted, "the run was stopped first".into()));
        assert_eq!(run_outcome(false, true, &stopped), Outcome::Interrupted);
        assert_eq!(run_outcome(false, false, &stopped), Outcome::Failed);

        let mut failed = outcomes(&[("a", MachineOutcome::RolledBack)]);
        not_started(&mut failed, &f, true);
        assert_eq!(run_outcome(false, true, &failed), Outcome::Failed, "a stop after a failure is a failure");
    }

    #[test]
    fn ended_states() {
        assert!(!ended(StepState::Planned) && !ended(StepState::Started));
        for s in [StepState::Finished, StepState::Skipped, StepState::Failed, StepState::RolledBack] {
            assert!(ended(s), "{s:?}");
        }
    }
}

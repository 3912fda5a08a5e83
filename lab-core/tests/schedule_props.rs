//! Scheduling properties under random failures (issue 10), with the real
//! orchestrator over a simulated fleet under tokio's paused clock.
//!
//! Random fleets (dependencies, critical machines, strategies), random
//! faults (activation fails, new system unhealthy, a reboot that never
//! returns), random limits, and a stop request at a random moment followed
//! by `resume`. Whatever happens:
//! - a machine is never touched while one of its dependencies is down or
//!   unhealthy (checked by the simulator at the moment lab acts);
//! - a critical machine is never down together with another machine;
//! - resume never repeats a finished step (no step starts again after its
//!   `finished` record), and nothing is rebooted or activated twice;
//! - every machine ends with an outcome in the report.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{evaluation, Faults, MachineSpec, Sim};
use lab_core::eval::Source;
use lab_core::orchestrate::{execute, prepare, resume, OrchestrateError, Outcome, RunKind, RunSpec, Session, StateDir};
use lab_core::store::journal::{self, Entry, StepState};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    machines: Vec<MachineSpec>,
    faults: BTreeMap<String, Faults>,
    kind: RunKind,
    max_parallel: usize,
    keep_going: bool,
    /// Simulated seconds after which the run is asked to stop.
    stop_after: Option<u64>,
}

fn machine(i: usize) -> impl Strategy<Value = (MachineSpec, Faults)> {
    let deps = proptest::collection::btree_set(0..i.max(1), 0..=i.min(2));
    let strategy = prop_oneof![Just("rolling"), Just("recreate"), Just("blue-green")];
    let fault = || prop_oneof![8 => Just(false), 1 => Just(true)];
    (deps, prop_oneof![6 => Just(false), 1 => Just(true)], strategy, fault(), fault(), fault(), 0..3i64).prop_map(
        move |(deps, critical, strategy, activation_fails, unhealthy, never_returns, reboot_order)| {
            let deps = if i == 0 { vec![] } else { deps.into_iter().map(|d| format!("m{d}")).collect() };
            let spec = MachineSpec { name: format!("m{i}"), deps, critical, strategy, reboot_order };
            (spec, Faults { activation_fails, unhealthy, never_returns, ..Faults::default() })
        },
    )
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..8)
        .prop_flat_map(|n| (0..n).map(machine).collect::<Vec<_>>())
        .prop_flat_map(|machines| {
            let kind = prop_oneof![Just(RunKind::Deploy), Just(RunKind::Reboot), Just(RunKind::Orchestrate)];
            (Just(machines), kind, 1usize..4, any::<bool>(), proptest::option::of(0u64..300))
        })
        .prop_map(|(machines, kind, max_parallel, keep_going, stop_after)| {
            let faults = machines.iter().map(|(m, f)| (m.name.clone(), *f)).collect();
            let machines = machines.into_iter().map(|(m, _)| m).collect();
            Case { machines, faults, kind, max_parallel, keep_going, stop_after }
        })
}

/// Runs the case (and its resume, if it was stopped); returns the final
/// outcome per machine, the simulator and the journal's records.
fn run(case: &Case) -> (BTreeMap<String, String>, Sim, Vec<journal::Record>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    let eval = evaluation(&case.machines);
    let sim = Sim::new(&eval, &case.faults);
    let mut spec = RunSpec::new(case.kind, &Source::JsonFile("/fleet.json".into()));
    spec.limits.max_parallel = case.max_parallel.try_into().unwrap();
    spec.keep_going = case.keep_going;
    runtime.block_on(async {
        let rt = sim.runtime();
        let prepared = prepare(&spec, &eval, rt.builder.as_deref()).await.unwrap();
        let session = Session::start(&state, &prepared, vec![spec.kind.name().into()]).unwrap();
        let run_id = session.run_id.clone();
        if let Some(after) = case.stop_after {
            let cancel = rt.cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(after)).await;
                cancel.cancel();
            });
        }
        let mut report = execute(&prepared, &rt, &run_id, Some(session.journal), session.prior).await.unwrap();
        drop(session.lock);
        if report.outcome == Outcome::Interrupted {
            let run = resume::find(&state, None).unwrap();
            let prepared = prepare(&run.spec, &eval, rt.builder.as_deref()).await.unwrap();
            let session = Session::resume(&state, &run, &prepared).unwrap();
            let rt = sim.runtime();
            report = execute(&prepared, &rt, &run_id, Some(session.journal), session.prior).await.unwrap();
        } else {
            // A run that ended is not resumable.
            assert!(matches!(resume::find(&state, None), Err(OrchestrateError::NothingToResume(_))));
        }
        let outcomes = report.machines.iter().map(|(n, (o, _))| (n.clone(), format!("{o:?}"))).collect();
        let records = journal::read(&state.journal_path(&run_id)).unwrap();
        (outcomes, sim.clone(), records)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn schedules_hold_under_random_failures_and_resume(case in case()) {
        let (outcomes, sim, records) = run(&case);
        // No dependent touched while its dependency was unhealthy; no
        // critical machine down with another.
        prop_assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
        // Every machine is accounted for.
        let names: Vec<&String> = case.machines.iter().map(|m| &m.name).collect();
        prop_assert_eq!(outcomes.keys().collect::<Vec<_>>(), names);
        // "Not started" only when a stop request came before the machine's
        // turn and a failure made the run end (not resumable) rather than
        // pause; the report says so for each of them.
        if case.stop_after.is_none() {
            prop_assert!(outcomes.values().all(|o| o != "NotStarted"), "{:?}", outcomes);
        }
        // Resume never repeats a finished step.
        let mut finished = std::collections::BTreeSet::new();
        for r in &records {
            if let Entry::Step { step, state, .. } = &r.entry {
                prop_assert!(!(finished.contains(step) && *state == StepState::Started), "{} started again after it finished", step);
                if *state == StepState::Finished {
                    finished.insert(step.clone());
                }
            }
        }
        for (name, m) in sim.with(|s| s.machines.clone()) {
            prop_assert!(m.reboots <= 1, "{} rebooted {} times", name, m.reboots);
            prop_assert!(m.activations <= 1, "{} activated {} times", name, m.activations);
        }
        // Without faults nothing fails.
        if case.faults.values().all(|f| *f == Faults::default()) {
            prop_assert!(outcomes.values().all(|o| o == "Done" || o == "NotNeeded"), "{:?}", outcomes);
        }
    }
}

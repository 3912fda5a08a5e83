//! Scheduling tests of whole runs over a simulated fleet, under tokio's
//! paused clock: order, criticality, strategies, failures, resume.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::eval::{Evaluation, Source};
use crate::metadata::parse_machine;
use crate::plan::Goal;

mod hooks;
// The integration tests' simulator, so that one simulated fleet serves both.
#[path = "../../../tests/common/sim/mod.rs"]
mod sim;
use sim::{Sim, SimBuilder};

/// `(name, dependencies, extra orchestration, groups)`.
type Spec<'a> = (&'a str, &'a [&'a str], serde_json::Value);

fn evaluation(machines: &[Spec<'_>]) -> Evaluation {
    let machines = machines
        .iter()
        .enumerate()
        .map(|(i, (name, deps, orchestration))| {
            let mut o = json!({ "rebootDelay": 5, "minHealthyTime": 2, "healthyDeadline": 30, "rebootTimeout": 60, "confirmTimeout": 10 });
            for (k, v) in orchestration.as_object().unwrap() {
                o[k] = v.clone();
            }
            let value = json!({
                "role": "r", "rebootOrder": i, "dependencies": deps, "orchestration": o,
                "healthChecks": [{ "type": "command", "command": "true", "interval": 1 }],
            });
            (name.to_string(), parse_machine(name, value, None).unwrap())
        })
        .collect();
    Evaluation { machines, ..Evaluation::default() }
}

struct Harness {
    sim: Sim,
    state: tempfile::TempDir,
}

impl Harness {
    /// The fleet of `eval`, without faults, waiting for reboots the way an
    /// ssh executor does (polling the boot id).
    fn new(eval: &Evaluation) -> Self {
        let sim = Sim::new(eval, &BTreeMap::new());
        sim.with(|s| s.poll_boot = true);
        Harness { sim, state: tempfile::tempdir().unwrap() }
    }

    /// Each of `machines` gets a new system that fails its health checks.
    fn unhealthy(self, machines: &[&str]) -> Self {
        for m in machines {
            self.sim.fault(m, |f| f.unhealthy = true);
        }
        self
    }

    fn state(&self) -> StateDir {
        StateDir::new(self.state.path())
    }

    async fn run(&self, spec: &RunSpec, eval: &Evaluation, rt: &Runtime) -> Report {
        let prepared = prepare(spec, eval, rt.builder.as_deref()).await.unwrap();
        let session = Session::start(&self.state(), &prepared, vec![spec.kind.name().into()]).unwrap();
        execute(&prepared, rt, &session.run_id, Some(session.journal), session.prior).await.unwrap()
    }
}

fn spec(kind: RunKind) -> RunSpec {
    RunSpec::new(kind, &Source::JsonFile("/fleet.json".into()))
}

fn outcome(report: &Report, machine: &str) -> MachineOutcome {
    report.machines[machine].0
}

#[tokio::test(start_paused = true)]
async fn rolling_deploy_goes_dependencies_first_each_health_gated() {
    let eval = evaluation(&[("db", &[], json!({})), ("web", &["db"], json!({})), ("cache", &[], json!({}))]);
    let h = Harness::new(&eval);
    let rt = h.sim.runtime();
    let report = h.run(&spec(RunKind::Deploy), &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    // rebootOrder breaks ties: db (0) before cache (2); web waits for db.
    assert_eq!(h.sim.order_of("switch"), ["db", "web", "cache"]);
    for n in ["db", "web", "cache"] {
        let m = h.sim.machine(n);
        assert_eq!(
            (m.current.as_str(), m.profile.as_str()),
            (format!("/nix/store/{n}-new").as_str(), format!("/nix/store/{n}-new").as_str())
        );
        assert!(m.timers.is_empty(), "{n}: watchdogs disarmed");
    }
    // One machine at a time: each switch starts after the previous one's
    // minHealthyTime (2 s) has passed.
    let switches: Vec<u128> =
        h.sim.log().iter().filter(|(_, _, w)| w.starts_with("switch")).map(|(t, _, _)| *t).collect();
    assert!(switches.windows(2).all(|w| w[1] >= w[0] + 2000), "{switches:?}");
}

#[tokio::test(start_paused = true)]
async fn unhealthy_machine_is_rolled_back_and_its_dependents_never_start() {
    let eval = evaluation(&[("db", &[], json!({})), ("web", &["db"], json!({})), ("other", &[], json!({}))]);
    let h = Harness::new(&eval).unhealthy(&["db"]);
    let rt = h.sim.runtime();
    let report = h.run(&spec(RunKind::Deploy), &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(outcome(&report, "db"), MachineOutcome::RolledBack);
    assert_eq!(outcome(&report, "web"), MachineOutcome::Skipped);
    // Without --keep-going the run stops: the unrelated machine is untouched too.
    assert_eq!(outcome(&report, "other"), MachineOutcome::Skipped);
    assert_eq!(h.sim.order_of("switch"), ["db"]);
    let db = h.sim.machine("db");
    assert_eq!((db.current.as_str(), db.profile.as_str()), ("/nix/store/db-old", "/nix/store/db-old"));
    assert!(report.summary().contains("1 rolled back"), "{}", report.summary());
}

#[tokio::test(start_paused = true)]
async fn keep_going_continues_unrelated_branches_until_max_failures() {
    let eval = evaluation(&[
        ("a", &[], json!({})),
        ("a-child", &["a"], json!({})),
        ("b", &[], json!({})),
        ("c", &[], json!({})),
        ("d", &[], json!({})),
    ]);
    let h = Harness::new(&eval).unhealthy(&["a", "b", "c"]);
    let rt = h.sim.runtime();
    let mut keep_going = spec(RunKind::Deploy);
    keep_going.keep_going = true;
    keep_going.max_failures = Some(2);
    let report = h.run(&keep_going, &eval, &rt).await;
    assert_eq!(outcome(&report, "a"), MachineOutcome::RolledBack);
    assert_eq!(outcome(&report, "a-child"), MachineOutcome::Skipped);
    assert_eq!(outcome(&report, "b"), MachineOutcome::RolledBack);
    // The second failure reached --max-failures 2: nothing more starts.
    assert_eq!(outcome(&report, "c"), MachineOutcome::Skipped);
    assert_eq!(outcome(&report, "d"), MachineOutcome::Skipped);
    assert_eq!(h.sim.order_of("switch"), ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn blue_green_is_all_or_nothing_per_wave() {
    let bg = json!({ "deployStrategy": "blue-green" });
    let eval = evaluation(&[("g1", &[], bg.clone()), ("g2", &[], bg.clone())]);
    let h = Harness::new(&eval).unhealthy(&["g2"]);
    let rt = h.sim.runtime();
    let mut spec = spec(RunKind::Deploy);
    spec.limits.max_parallel = 2.try_into().unwrap();
    let report = h.run(&spec, &eval, &rt).await;
    assert_eq!(outcome(&report, "g1"), MachineOutcome::RolledBack);
    assert_eq!(outcome(&report, "g2"), MachineOutcome::RolledBack);
    assert!(report.machines["g1"].1.contains("all or nothing and g2"), "{report:?}");
    for n in ["g1", "g2"] {
        let m = h.sim.machine(n);
        assert_eq!(m.current, format!("/nix/store/{n}-old"));
        assert_eq!(m.profile, format!("/nix/store/{n}-old"), "{n}: the boot default never changed");
    }
    assert!(h.sim.log().iter().any(|(_, m, w)| m == "g1" && w == "switch test /nix/store/g1-new"));
}

#[tokio::test(start_paused = true)]
async fn blue_green_commits_only_when_every_machine_passed() {
    let bg = json!({ "deployStrategy": "blue-green" });
    let eval = evaluation(&[("g1", &[], bg.clone()), ("g2", &[], bg.clone())]);
    let h = Harness::new(&eval);
    let rt = h.sim.runtime();
    let mut spec = spec(RunKind::Deploy);
    spec.limits.max_parallel = 2.try_into().unwrap();
    let report = h.run(&spec, &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    let log = h.sim.log();
    let last_test = log.iter().filter(|(_, _, w)| w.starts_with("switch test")).map(|(t, _, _)| *t).max().unwrap();
    let first_boot = log.iter().filter(|(_, _, w)| w.starts_with("switch boot")).map(|(t, _, _)| *t).min().unwrap();
    assert!(first_boot > last_test + 2000, "commits after both were healthy: {log:?}");
    assert_eq!(h.sim.machine("g2").profile, "/nix/store/g2-new");
}

#[tokio::test(start_paused = true)]
async fn a_critical_machine_is_never_activated_with_another() {
    let eval = evaluation(&[
        ("a", &[], json!({})),
        ("core", &[], json!({ "criticalityLevel": "critical" })),
        ("b", &[], json!({})),
    ]);
    let h = Harness::new(&eval);
    let rt = h.sim.runtime();
    let mut spec = spec(RunKind::Deploy);
    spec.limits.max_parallel = 3.try_into().unwrap();
    h.run(&spec, &eval, &rt).await;
    let log = h.sim.log();
    let span = |n: &str| {
        let ts: Vec<u128> = log
            .iter()
            .filter(|(_, m, w)| m == n && (w.starts_with("profile") || w == "disarm"))
            .map(|(t, _, _)| *t)
            .collect();
        (*ts.iter().min().unwrap(), *ts.iter().max().unwrap())
    };
    let (cs, ce) = span("core");
    for other in ["a", "b"] {
        let (s, e) = span(other);
        assert!(e < cs || s > ce, "{other} ({s}-{e}) overlaps core ({cs}-{ce})");
    }
    // a and b shared a wave.
    assert_eq!(span("a").0, span("b").0);
}

#[tokio::test(start_paused = true)]
async fn a_generation_that_breaks_ssh_is_rolled_back_by_the_machine_itself() {
    let eval = evaluation(&[("edge", &[], json!({ "confirmTimeout": 10 }))]);
    let h = Harness::new(&eval);
    h.sim.fault("edge", |f| f.breaks_ssh = true);
    let rt = h.sim.runtime();
    let report = h.run(&spec(RunKind::Deploy), &eval, &rt).await;
    assert_eq!(outcome(&report, "edge"), MachineOutcome::RolledBack, "{report:?}");
    let m = h.sim.machine("edge");
    assert_eq!((m.current.as_str(), m.profile.as_str()), ("/nix/store/edge-old", "/nix/store/edge-old"));
    let log = h.sim.log();
    let switched = log.iter().find(|(_, _, w)| w.starts_with("switch")).unwrap().0;
    let fired = log.iter().find(|(_, _, w)| w.starts_with("watchdog lab-confirm")).unwrap().0;
    assert!(fired - switched <= 10_000, "within confirmTimeout: {log:?}");
}

/// A switch's exit status is read from the machine and reported; the
/// machine goes back.
#[tokio::test(start_paused = true)]
async fn a_failed_switch_is_reported_with_its_status_and_rolled_back() {
    let eval = evaluation(&[("a", &[], json!({}))]);
    let h = Harness::new(&eval);
    h.sim.fault("a", |f| f.activation_fails = true);
    let rt = h.sim.runtime();
    let report = h.run(&spec(RunKind::Deploy), &eval, &rt).await;
    assert_eq!(outcome(&report, "a"), MachineOutcome::RolledBack, "{report:?}");
    assert!(report.machines["a"].1.contains("switch-to-configuration switch exited with status 1"), "{report:?}");
    assert_eq!(h.sim.machine("a").current, "/nix/store/a-old");
    assert!(h.sim.machine("a").timers.is_empty());
}

/// Confirming checks its own stop and that nothing is left armed: a
/// refused stop or a timer still armed is never reported confirmed.
#[tokio::test(start_paused = true)]
async fn a_watchdog_lab_could_not_disarm_is_never_reported_confirmed() {
    for (fault, says) in [("refused", "stopping its watchdog timers failed"), ("ignored", ".timer armed")] {
        let eval = evaluation(&[("a", &[], json!({ "confirmTimeout": 10 }))]);
        let h = Harness::new(&eval);
        h.sim.fault("a", |f| match fault {
            "refused" => f.disarm_refused = true,
            _ => f.disarm_ignored = true,
        });
        let rt = h.sim.runtime();
        let report = h.run(&spec(RunKind::Deploy), &eval, &rt).await;
        assert_ne!(outcome(&report, "a"), MachineOutcome::Done, "{fault}: {report:?}");
        assert!(report.machines["a"].1.contains(says), "{fault}: {report:?}");
        assert!(h.sim.log().iter().all(|(_, _, w)| !w.starts_with("disarm")), "{fault}");
    }
}

#[tokio::test(start_paused = true)]
async fn reboots_follow_the_order_and_a_lost_machine_stops_the_run_at_its_deadline() {
    let eval = evaluation(&[("a", &[], json!({})), ("b", &["a"], json!({})), ("c", &["b"], json!({}))]);
    let h = Harness::new(&eval);
    h.sim.fault("b", |f| f.never_returns = true);
    let rt = h.sim.runtime();
    let started = tokio::time::Instant::now();
    let report = h.run(&spec(RunKind::Reboot), &eval, &rt).await;
    assert_eq!(outcome(&report, "a"), MachineOutcome::Done);
    assert_eq!(outcome(&report, "b"), MachineOutcome::Failed);
    assert_eq!(outcome(&report, "c"), MachineOutcome::Skipped);
    assert_eq!(h.sim.machine("c").reboots, 0, "nothing after it is touched");
    assert!(report.machines["b"].1.contains("rebootTimeout is 60 s"), "{report:?}");
    // a: 5 s delay + 20 s boot + 2 s healthy; b: 5 s delay + 60 s rebootTimeout.
    let elapsed = started.elapsed().as_secs();
    assert!((92..=95).contains(&elapsed), "{elapsed}");
}

#[tokio::test(start_paused = true)]
async fn only_if_needed_reboots_machines_whose_boot_default_changed() {
    let eval = evaluation(&[("same", &[], json!({})), ("changed", &[], json!({}))]);
    let h = Harness::new(&eval);
    h.sim.with(|s| s.machines.get_mut("changed").unwrap().profile = "/nix/store/changed-new".into());
    let rt = h.sim.runtime();
    let mut spec = spec(RunKind::Reboot);
    spec.options.only_if_needed = true;
    let report = h.run(&spec, &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Success);
    assert_eq!(outcome(&report, "same"), MachineOutcome::NotNeeded);
    assert_eq!((h.sim.machine("same").reboots, h.sim.machine("changed").reboots), (0, 1));
    assert_eq!(h.sim.machine("changed").booted, "/nix/store/changed-new");
}

#[tokio::test(start_paused = true)]
async fn resume_after_an_interruption_never_repeats_a_finished_step() {
    let eval = evaluation(&[("a", &[], json!({})), ("b", &["a"], json!({})), ("c", &["b"], json!({}))]);
    let h = Harness::new(&eval);
    let (events, mut rx) = Events::channel();
    let mut rt = h.sim.runtime();
    rt.events = events;
    // Ctrl-C as soon as b's reboot is issued.
    let cancel = rt.cancel.clone();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            if matches!(&event, Event::StepFinished { step, .. } if step == "reboot/b/reboot") {
                cancel.cancel();
            }
        }
    });
    let spec = spec(RunKind::Reboot);
    let first = h.run(&spec, &eval, &rt).await;
    assert_eq!(first.outcome, Outcome::Interrupted, "{first:?}");
    assert!(first.summary().contains("lab resume"));
    assert_eq!(outcome(&first, "a"), MachineOutcome::Done);
    assert_eq!(h.sim.machine("c").reboots, 0);

    let run = resume::find(&h.state(), None).unwrap();
    let rt = h.sim.runtime();
    let prepared = prepare(&run.spec, &eval, None).await.unwrap();
    let session = Session::resume(&h.state(), &run, &prepared).unwrap();
    let second = execute(&prepared, &rt, &session.run_id, Some(session.journal), session.prior).await.unwrap();
    assert_eq!(second.outcome, Outcome::Success, "{second:?}");
    for n in ["a", "b", "c"] {
        assert_eq!(h.sim.machine(n).reboots, 1, "{n} rebooted exactly once");
    }
    // A finished run cannot be resumed again.
    assert!(matches!(resume::find(&h.state(), Some(&run.run_id)), Err(OrchestrateError::Finished { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_machine_whose_boot_id_changed_is_never_rebooted_again() {
    let eval = evaluation(&[("a", &[], json!({}))]);
    let h = Harness::new(&eval);
    let spec = spec(RunKind::Reboot);
    let prepared = prepare(&spec, &eval, None).await.unwrap();
    // A crash right after the reboot was journaled as started.
    let mut session = Session::start(&h.state(), &prepared, vec!["reboot".into()]).unwrap();
    // The detail as JSON, as every lab wrote it.
    let step = |action: &str, state, detail: serde_json::Value| journal::Entry::Step {
        step: format!("reboot/a/{action}"),
        machine: "a".into(),
        state,
        detail: serde_json::from_value(detail).unwrap(),
    };
    session.journal.append(step("wait", journal::StepState::Finished, serde_json::Value::Null)).unwrap();
    session.journal.append(step("reboot", journal::StepState::Started, json!({ "bootIdBefore": "boot-0" }))).unwrap();
    drop(session);
    // Meanwhile the machine did reboot.
    h.sim.with(|s| s.machines.get_mut("a").unwrap().boot = 1);

    let run = resume::find(&h.state(), None).unwrap();
    let session = Session::resume(&h.state(), &run, &prepared).unwrap();
    let rt = h.sim.runtime();
    let report = execute(&prepared, &rt, &session.run_id, Some(session.journal), session.prior).await.unwrap();
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    assert_eq!(h.sim.machine("a").reboots, 0, "the boot id proves the reboot happened");
}

#[tokio::test(start_paused = true)]
async fn resume_refuses_when_the_configuration_changed() {
    let eval = evaluation(&[("a", &[], json!({}))]);
    let h = Harness::new(&eval);
    let builder = SimBuilder::default();
    let spec = spec(RunKind::Deploy);
    let prepared = prepare(&spec, &eval, Some(&builder)).await.unwrap();
    drop(Session::start(&h.state(), &prepared, vec!["deploy".into()]).unwrap());
    let changed = SimBuilder { suffix: [("a".to_string(), "newer".to_string())].into() };
    let now = prepare(&spec, &eval, Some(&changed)).await.unwrap();
    let run = resume::find(&h.state(), None).unwrap();
    let err = Session::resume(&h.state(), &run, &now).unwrap_err().to_string();
    assert!(err.contains("the system of a changed"), "{err}");
    assert!(err.contains("/nix/store/a-newer"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_second_run_on_the_same_fleet_is_refused_naming_the_first() {
    let eval = evaluation(&[("a", &[], json!({}))]);
    let h = Harness::new(&eval);
    let prepared = prepare(&spec(RunKind::Reboot), &eval, None).await.unwrap();
    let first = Session::start(&h.state(), &prepared, vec![]).unwrap();
    let err = Session::start(&h.state(), &prepared, vec![]).unwrap_err().to_string();
    assert!(err.contains(&format!("lab unlock --force {}", first.run_id)), "{err}");
    force_unlock(&h.state(), &first.run_id).unwrap();
    Session::start(&h.state(), &prepared, vec![]).unwrap();
}

#[tokio::test(start_paused = true)]
async fn boot_goal_sets_the_default_and_touches_nothing_running() {
    let eval = evaluation(&[("a", &[], json!({}))]);
    let h = Harness::new(&eval);
    let rt = h.sim.runtime();
    let mut spec = spec(RunKind::Orchestrate);
    spec.options.no_delay = true;
    let report = h.run(&spec, &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    let m = h.sim.machine("a");
    // Deployed with boot, then rebooted because the boot default changed.
    assert_eq!(m.reboots, 1);
    assert_eq!((m.booted.as_str(), m.current.as_str()), ("/nix/store/a-new", "/nix/store/a-new"));
    assert!(h.sim.log().iter().any(|(_, _, w)| w == "switch boot /nix/store/a-new"));
    assert_eq!(spec.options.goal, Goal::Boot);
}

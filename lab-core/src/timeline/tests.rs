//! Timelines of journals: records made here with chosen times (to pin the
//! critical path down), and journals real `lab` runs wrote on the e2e
//! test hosts (`tests/fixtures/journals/`).

use super::*;
use crate::store::record::RunStart;

/// A journal's records from `(time, entry)` pairs, numbered in order.
fn records(entries: Vec<(u64, Entry)>) -> Vec<Record> {
    entries
        .into_iter()
        .enumerate()
        .map(|(seq, (time_ms, entry))| Record { seq: seq as u64, time_ms, run_id: "r1".into(), entry })
        .collect()
}

fn started(command: &str) -> Entry {
    Entry::RunStarted { plan_hash: "h".into(), command: vec![command.into()], detail: RunStart::default() }
}

fn step(machine: &str, action: &str, state: StepState) -> Entry {
    Entry::Step { step: format!("deploy/{machine}/{action}"), machine: machine.into(), state, detail: StepDetail::None }
}

fn with(machine: &str, action: &str, state: StepState, detail: StepDetail) -> Entry {
    Entry::Step { step: format!("deploy/{machine}/{action}"), machine: machine.into(), state, detail }
}

/// db then web (one wave each), cache last; web fails its health checks
/// and is rolled back, so cache never starts.
fn failed_deploy() -> Vec<Record> {
    use StepState::*;
    let mut e = vec![(0, started("deploy"))];
    for m in ["cache", "db", "web"] {
        for a in ["build", "copy", "activate", "health-checks"] {
            e.push((0, step(m, a, Planned)));
        }
    }
    e.extend([
        (10, step("cache", "build", Started)),
        (10, step("db", "build", Started)),
        (10, step("web", "build", Started)),
        // One build for all: they end together, written one after the other.
        (1000, step("cache", "build", Finished)),
        (1001, step("db", "build", Finished)),
        (1002, step("web", "build", Finished)),
        (1003, step("cache", "copy", Started)),
        (1003, step("db", "copy", Started)),
        (1003, step("web", "copy", Started)),
        (1500, step("cache", "copy", Finished)),
        (2000, step("db", "copy", Finished)),
        (2600, step("web", "copy", Finished)),
        (2601, step("db", "activate", Started)),
        (3000, step("db", "activate", Finished)),
        (3001, step("db", "health-checks", Started)),
        (5000, step("db", "health-checks", Finished)),
        (5001, step("web", "activate", Started)),
        (5400, step("web", "activate", Finished)),
        (5401, step("web", "health-checks", Started)),
        (9000, with("web", "health-checks", Failed, StepDetail::Failed { error: "http 503".into() })),
        (
            9500,
            with(
                "web",
                "activate",
                RolledBack,
                StepDetail::RolledBack { reason: "unhealthy".into(), system: "/nix/store/old".into(), healthy: true },
            ),
        ),
        (9501, with("cache", "activate", Skipped, StepDetail::Skipped { reason: "the run stopped".into() })),
        (9501, with("cache", "health-checks", Skipped, StepDetail::Skipped { reason: "the run stopped".into() })),
        (9600, Entry::RunFinished { outcome: Outcome::Failed }),
    ]);
    records(e)
}

fn machine<'a>(t: &'a Timeline, name: &str) -> &'a MachineTimeline {
    t.machines.iter().find(|m| m.machine == name).unwrap()
}

/// `(phase, start, end)` of each segment.
fn shape(m: &MachineTimeline) -> Vec<(Phase, u64, u64)> {
    m.segments.iter().map(|s| (s.phase, s.start_ms, s.end_ms)).collect()
}

#[test]
fn each_machine_gets_its_phases_with_the_waits_between() {
    let t = Timeline::from_records(&failed_deploy()).unwrap();
    assert_eq!((t.started_ms, t.finished_ms, t.outcome), (0, Some(9600), Some(Outcome::Failed)));
    assert_eq!(t.command, ["deploy"]);
    assert_eq!(t.machines.iter().map(|m| m.machine.as_str()).collect::<Vec<_>>(), ["cache", "db", "web"]);
    use Phase::*;
    let web = machine(&t, "web");
    assert_eq!(
        shape(web),
        [
            (Waiting, 0, 10),
            (Building, 10, 1002),
            (Waiting, 1002, 1003),
            (Copying, 1003, 2600),
            (Waiting, 2600, 5001),
            (Activating, 5001, 5400),
            (Waiting, 5400, 5401),
            (Health, 5401, 9000),
            (Activating, 9000, 9500),
        ]
    );
    let health = web.segments.iter().find(|s| s.phase == Health).unwrap();
    assert_eq!((health.state, health.error.as_deref()), (Some(StepState::Failed), Some("http 503")));
    let undo = web.segments.last().unwrap();
    assert!(undo.rollback && undo.state == Some(StepState::RolledBack), "{undo:?}");
    assert_eq!(undo.error.as_deref(), Some("unhealthy"));
    let activation = web.segments.iter().find(|s| s.phase == Activating).unwrap();
    assert_eq!(activation.state, Some(StepState::Finished), "the activation itself went through");

    let cache = machine(&t, "cache");
    assert_eq!(shape(cache), [(Waiting, 0, 10), (Building, 10, 1000), (Waiting, 1000, 1003), (Copying, 1003, 1500)]);
    let skipped: Vec<(&str, &str)> = cache.skipped.iter().map(|s| (s.step.as_str(), s.reason.as_str())).collect();
    assert_eq!(
        skipped,
        [("deploy/cache/activate", "the run stopped"), ("deploy/cache/health-checks", "the run stopped")]
    );
    assert!(cache.planned.is_empty());
}

#[test]
fn the_critical_path_is_the_chain_that_set_the_end() {
    let t = Timeline::from_records(&failed_deploy()).unwrap();
    // Back from web's rollback: its own health checks and activation; the
    // activation waited for db's wave (db's health checks), db's
    // activation for the last copy (web's), web's copy for its own build
    // (the builds ended together: its own machine's is the one).
    assert_eq!(
        t.critical_path,
        [
            "deploy/web/build",
            "deploy/web/copy",
            "deploy/db/activate",
            "deploy/db/health-checks",
            "deploy/web/activate",
            "deploy/web/health-checks",
            "deploy/web/activate",
        ]
    );
    let marked: Vec<(&str, &str)> = t
        .machines
        .iter()
        .flat_map(|m| {
            m.segments.iter().filter(|s| s.critical).map(move |s| (m.machine.as_str(), s.step.as_deref().unwrap()))
        })
        .collect();
    assert_eq!(marked.len(), 7, "{marked:?}");
    assert!(!marked.iter().any(|(m, _)| *m == "cache"), "cache's copy ended first: not critical: {marked:?}");
    assert!(machine(&t, "db")
        .segments
        .iter()
        .all(|s| s.critical == matches!(s.action, Some(Action::Activate | Action::HealthChecks))));
}

#[test]
fn health_checks_wait_only_for_their_own_machine() {
    use StepState::*;
    // a and b in one wave: b's activation ends after a's, before a's
    // health checks start; a's checks still follow a's activation.
    let t = Timeline::from_records(&records(vec![
        (0, started("deploy")),
        (0, step("a", "activate", Started)),
        (0, step("b", "activate", Started)),
        (100, step("a", "activate", Finished)),
        (500, step("b", "activate", Finished)),
        (600, step("a", "health-checks", Started)),
        (700, step("b", "health-checks", Started)),
        (900, step("b", "health-checks", Finished)),
        (2000, step("a", "health-checks", Finished)),
        (2001, Entry::RunFinished { outcome: Outcome::Success }),
    ]))
    .unwrap();
    assert_eq!(t.critical_path, ["deploy/a/activate", "deploy/a/health-checks"]);
    assert_eq!(shape(machine(&t, "a"))[1], (Phase::Waiting, 100, 600), "the gap between its steps");
}

#[test]
fn a_resumed_run_closes_what_the_interruption_left_open() {
    use StepState::*;
    let t = Timeline::from_records(&records(vec![
        (0, started("reboot")),
        (0, step("a", "reboot", Planned)),
        (0, step("b", "reboot", Planned)),
        (10, step("a", "reboot", Started)),
        (20, Entry::RunFinished { outcome: Outcome::Interrupted }),
        (
            5000,
            Entry::RunStarted {
                plan_hash: "h".into(),
                command: vec!["resume".into(), "r1".into()],
                detail: RunStart::default(),
            },
        ),
        (5100, step("a", "reboot", Started)),
        (5200, step("a", "reboot", Finished)),
    ]))
    .unwrap();
    assert_eq!(t.command, ["reboot"], "the command that began it");
    assert_eq!((t.finished_ms, t.outcome), (None, None), "resumed and not finished again");
    let a = machine(&t, "a");
    let reboots: Vec<(u64, u64, Option<StepState>)> =
        a.segments.iter().filter(|s| s.step.is_some()).map(|s| (s.start_ms, s.end_ms, s.state)).collect();
    assert_eq!(reboots, [(10, 20, Some(Started)), (5100, 5200, Some(Finished))]);
    assert_eq!(machine(&t, "b").planned, ["deploy/b/reboot"]);
    assert_eq!(t.last_record_ms, 5200);
}

#[test]
fn a_step_still_running_ends_at_the_last_record() {
    use StepState::*;
    let t = Timeline::from_records(&records(vec![
        (0, started("deploy")),
        (5, step("a", "build", Started)),
        (50, step("b", "build", Started)),
        (80, step("b", "build", Finished)),
    ]))
    .unwrap();
    let a = &machine(&t, "a").segments[1];
    assert_eq!((a.start_ms, a.end_ms, a.state), (5, 80, Some(Started)));
    assert_eq!(t.critical_path, ["deploy/a/build"], "the running step ends last");
}

#[test]
fn read_refuses_run_ids_that_are_not_journal_names() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    for id in ["../etc/passwd", "", ".hidden", "a/b", "missing"] {
        let err = read(&state, id).unwrap_err();
        assert!(matches!(err, TimelineError::NoSuchRun { .. }), "{id}: {err}");
    }
}

/// The timeline of a journal a real `lab` run wrote on the e2e test hosts
/// (db and cache first, web and api after db; --max-parallel 2; see
/// tests/fixtures/journals/README.md).
fn fixture(name: &str) -> Timeline {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journals").join(name);
    let records = journal::read(&path).unwrap();
    Timeline::from_records(&records).unwrap()
}

/// What holds for every timeline: one lane per machine, its segments in
/// order without overlap inside the run, and each step on the critical
/// path started after the one before it ended.
fn check_shape(t: &Timeline, machines: &[&str]) {
    let names: Vec<&str> = t.machines.iter().map(|m| m.machine.as_str()).collect();
    assert_eq!(names, machines);
    let end = t.finished_ms.unwrap();
    for m in &t.machines {
        let mut at = t.started_ms;
        for s in &m.segments {
            assert!(s.start_ms >= at && s.end_ms >= s.start_ms && s.end_ms <= end, "{}: {s:?}", m.machine);
            at = s.end_ms;
        }
    }
    let critical: Vec<&Segment> = t.machines.iter().flat_map(|m| &m.segments).filter(|s| s.critical).collect();
    assert_eq!(critical.len(), t.critical_path.len());
    let mut chain: Vec<&Segment> = critical.clone();
    chain.sort_by_key(|s| (s.start_ms, s.end_ms));
    for pair in chain.windows(2) {
        assert!(pair[1].start_ms >= pair[0].end_ms, "{pair:?}");
    }
    assert_eq!(
        chain.last().unwrap().end_ms,
        t.machines.iter().flat_map(|m| &m.segments).map(|s| s.end_ms).max().unwrap()
    );
}

#[test]
fn a_real_deploy() {
    let t = fixture("deploy.jsonl");
    check_shape(&t, &["api", "cache", "db", "web"]);
    assert_eq!(t.outcome, Some(Outcome::Success));
    assert!(t.command.windows(3).any(|w| w == ["deploy", "--max-parallel", "2"]), "{:?}", t.command);
    for m in &t.machines {
        let phases: Vec<Phase> = m.segments.iter().filter(|s| s.step.is_some()).map(|s| s.phase).collect();
        assert_eq!(phases, [Phase::Building, Phase::Copying, Phase::Activating, Phase::Health], "{}", m.machine);
    }
    // web's health checks ended last; web's activation waited for db's
    // wave (db ended its checks last, cache 40 ms before it); db's
    // activation waited for the last copy (cache's), and that copy for
    // cache's own build.
    assert_eq!(
        t.critical_path,
        [
            "deploy/cache/build",
            "deploy/cache/copy",
            "deploy/db/activate",
            "deploy/db/health-checks",
            "deploy/web/activate",
            "deploy/web/health-checks"
        ]
    );
    let api = &machine(&t, "api").segments;
    let activation = api.iter().position(|s| s.phase == Phase::Activating).unwrap();
    let waited = &api[activation - 1];
    assert_eq!(waited.phase, Phase::Waiting);
    assert!(waited.end_ms - waited.start_ms > 2000, "api waited for the first wave: {waited:?}");
}

#[test]
fn a_real_reboot() {
    let t = fixture("reboot.jsonl");
    check_shape(&t, &["api", "cache", "db", "web"]);
    for m in &t.machines {
        let phases: Vec<Phase> = m.segments.iter().filter(|s| s.step.is_some()).map(|s| s.phase).collect();
        // wait (rebootDelay), reboot, wait for boot, health checks.
        assert_eq!(phases, [Phase::Waiting, Phase::Rebooting, Phase::Rebooting, Phase::Health], "{}", m.machine);
    }
    assert_eq!(
        t.critical_path,
        [
            "reboot/db/wait",
            "reboot/db/reboot",
            "reboot/db/wait-for-boot",
            "reboot/db/health-checks",
            "reboot/api/wait",
            "reboot/api/reboot",
            "reboot/api/wait-for-boot",
            "reboot/api/health-checks"
        ]
    );
}

#[test]
fn a_real_rollback() {
    let t = fixture("rollback.jsonl");
    check_shape(&t, &["api", "cache", "db", "web"]);
    assert_eq!(t.outcome, Some(Outcome::Failed));
    let web = machine(&t, "web");
    let health = web.segments.iter().find(|s| s.phase == Phase::Health).unwrap();
    assert_eq!(health.state, Some(StepState::Failed));
    assert!(health.error.as_deref().unwrap().contains("health"), "{health:?}");
    let undo = web.segments.last().unwrap();
    assert!(undo.rollback && undo.phase == Phase::Activating && undo.start_ms == health.end_ms, "{undo:?}");
    assert_eq!(
        t.critical_path,
        [
            "deploy/db/build",
            "deploy/db/copy",
            "deploy/db/activate",
            "deploy/db/health-checks",
            "deploy/web/activate",
            "deploy/web/health-checks",
            "deploy/web/activate"
        ]
    );
}

//! Run hooks over the simulated fleet: notifications of a rollback and of a
//! failed run, and reboots held to the fleet's maintenance window.

use std::time::Duration;

use super::*;
use crate::notify::NotifyConfig;
use crate::orchestrate::window_gate::TokioClock;

/// A deploy where `db` is unhealthy, quick in real time (hooks are real
/// processes, which a paused clock would time out at once).
fn quick_failing_deploy() -> (Evaluation, Harness) {
    let quick = json!({ "healthyDeadline": 1, "minHealthyTime": 0 });
    let eval = evaluation(&[("db", &[], quick.clone()), ("web", &["db"], quick)]);
    let h = Harness::new(&eval).unhealthy(&["db"]);
    (eval, h)
}

fn notices(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let Event::Notice { message } = e {
            out.push(message);
        }
    }
    out
}

#[tokio::test]
async fn a_rollback_and_the_failed_run_reach_the_hook_as_json() {
    let (eval, h) = quick_failing_deploy();
    let dir = tempfile::tempdir().unwrap();
    let mut rt = h.sim.runtime();
    // One file per event: the hook writes its standard input to a new file.
    let script = r#"f=$(mktemp -p "$0"); cat > "$f""#;
    let argv = ["sh", "-c", script, dir.path().to_str().unwrap()];
    rt.notify = NotifyConfig { command: Some(argv.map(String::from).to_vec()), ..Default::default() };
    let (events, mut rx) = Events::channel();
    rt.events = events;
    let report =
        tokio::time::timeout(Duration::from_secs(60), h.run(&spec(RunKind::Deploy), &eval, &rt)).await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    let mut got: Vec<serde_json::Value> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| serde_json::from_str(&std::fs::read_to_string(f.unwrap().path()).unwrap()).unwrap())
        .collect();
    got.sort_by_key(|e| e["event"].as_str().unwrap().to_string());
    assert_eq!(got.len(), 2, "{got:#?}");
    let (rollback, failed) = (&got[0], &got[1]);
    assert_eq!(rollback["event"], "rollback");
    assert_eq!(rollback["machine"], "db");
    assert_eq!(rollback["runId"], report.run_id.as_str());
    assert_eq!(rollback["system"], "/nix/store/db-old");
    assert_eq!(rollback["healthy"], true);
    assert!(rollback["reason"].as_str().unwrap().contains("not healthy"), "{rollback}");
    assert_eq!(failed["event"], "run-failed");
    assert_eq!(failed["command"], "deploy");
    assert_eq!(failed["runId"], report.run_id.as_str());
    assert_eq!(failed["machines"]["db"]["outcome"], "rolled-back");
    assert_eq!(failed["machines"]["web"]["outcome"], "skipped");
    assert_eq!(failed["summary"], report.summary().as_str());
    let told = notices(&mut rx);
    assert_eq!(told.iter().filter(|n| n.starts_with("notified the command hook")).count(), 2, "{told:?}");
}

#[tokio::test]
async fn a_successful_run_tells_no_one() {
    let eval = evaluation(&[("db", &[], json!({ "minHealthyTime": 0 }))]);
    let h = Harness::new(&eval);
    let dir = tempfile::tempdir().unwrap();
    let mut rt = h.sim.runtime();
    let marker = dir.path().join("called");
    rt.notify =
        NotifyConfig { command: Some(vec!["touch".into(), marker.display().to_string()]), ..Default::default() };
    let report =
        tokio::time::timeout(Duration::from_secs(60), h.run(&spec(RunKind::Deploy), &eval, &rt)).await.unwrap();
    assert_eq!(report.outcome, Outcome::Success);
    assert!(!marker.exists());
}

/// The simulated log's times, relative to its first entry, without the
/// watchdog unit names (they hold the run's id).
fn timeline(h: &Harness) -> Vec<(u128, String, String)> {
    let log = h.sim.log();
    let t0 = log.first().map_or(0, |e| e.0);
    let unit = |w: String| if w.starts_with("arm ") { "arm".to_string() } else { w };
    log.into_iter().map(|(t, m, w)| (t - t0, m, unit(w))).collect()
}

#[tokio::test(start_paused = true)]
async fn failing_and_hanging_hooks_neither_break_nor_slow_the_run() {
    let eval = evaluation(&[("db", &[], json!({})), ("web", &["db"], json!({})), ("other", &[], json!({}))]);
    let mut spec = spec(RunKind::Deploy);
    spec.keep_going = true;

    let plain = Harness::new(&eval).unhealthy(&["db"]);
    let expected = plain.run(&spec, &eval, &plain.sim.runtime()).await;

    let h = Harness::new(&eval).unhealthy(&["db"]);
    let mut rt = h.sim.runtime();
    rt.notify = NotifyConfig {
        command: Some(vec!["sh".into(), "-c".into(), "sleep 600".into()]),
        webhook: Some("http://127.0.0.1:9/unreachable".into()),
        timeout: Some(30),
    };
    let (events, mut rx) = Events::channel();
    rt.events = events;
    let report = h.run(&spec, &eval, &rt).await;
    assert_eq!(report.outcome, expected.outcome);
    assert_eq!(report.machines, expected.machines, "the hooks changed nothing");
    assert_eq!(outcome(&report, "db"), MachineOutcome::RolledBack);
    assert_eq!(outcome(&report, "other"), MachineOutcome::Done);
    assert_eq!(timeline(&h), timeline(&plain), "every step at the same time as without hooks");
    let told = notices(&mut rx);
    let failed: Vec<&String> = told.iter().filter(|n| n.contains("hook was not told")).collect();
    // Two events (the rollback, the failed run), two hooks each.
    assert_eq!(failed.len(), 4, "{told:?}");
    assert!(
        failed.iter().any(|n| n.starts_with("the command hook") && n.contains("did not finish within 30s")),
        "{told:?}"
    );
    assert!(failed.iter().any(|n| n.starts_with("the webhook hook")), "{told:?}");
}

fn reboot_window(outside: OutsideWindow, now: &str) -> RebootWindow {
    // 2026-11-28 is a Saturday.
    RebootWindow { window: "Sat 02:00-05:00".parse().unwrap(), outside, clock: TokioClock::at(now) }
}

#[tokio::test(start_paused = true)]
async fn outside_the_window_a_reboot_is_refused_and_says_when_it_opens() {
    let eval = evaluation(&[("db", &[], json!({})), ("web", &["db"], json!({}))]);
    let h = Harness::new(&eval);
    let mut rt = h.sim.runtime();
    rt.window = Some(reboot_window(OutsideWindow::Refuse, "2026-11-27 23:30"));
    let report = h.run(&spec(RunKind::Reboot), &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Failed, "nothing was rebooted: not a success");
    assert!(h.sim.order_of("reboot").is_empty());
    assert_eq!(outcome(&report, "db"), MachineOutcome::Skipped);
    let why = &report.machines["db"].1;
    assert!(why.contains("maintenance window \"Sat 02:00-05:00\"") && why.contains("2026-11-28 02:00"), "{why}");
    assert_eq!(outcome(&report, "web"), MachineOutcome::Skipped);
}

#[tokio::test(start_paused = true)]
async fn outside_the_window_a_reboot_can_wait_for_it() {
    let eval = evaluation(&[("db", &[], json!({})), ("web", &["db"], json!({}))]);
    let h = Harness::new(&eval);
    let mut rt = h.sim.runtime();
    rt.window = Some(reboot_window(OutsideWindow::Wait, "2026-11-27 23:30"));
    let (events, mut rx) = Events::channel();
    rt.events = events;
    let started = tokio::time::Instant::now();
    let report = h.run(&spec(RunKind::Reboot), &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    assert_eq!(h.sim.order_of("reboot"), ["db", "web"]);
    // 2 h 30 min until Saturday 02:00, then both go inside the window.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(150 * 60) && elapsed < Duration::from_secs(155 * 60), "{elapsed:?}");
    let told = notices(&mut rx);
    assert!(
        told.iter().any(|n| n.starts_with("db: waiting for the maintenance window") && n.contains("2026-11-28 02:00")),
        "{told:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn inside_the_window_reboots_go_at_once() {
    let eval = evaluation(&[("db", &[], json!({}))]);
    let h = Harness::new(&eval);
    let mut rt = h.sim.runtime();
    rt.window = Some(reboot_window(OutsideWindow::Refuse, "2026-11-28 02:30"));
    let report = h.run(&spec(RunKind::Reboot), &eval, &rt).await;
    assert_eq!(report.outcome, Outcome::Success, "{report:?}");
    assert_eq!(h.sim.order_of("reboot"), ["db"]);
}

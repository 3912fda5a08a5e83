//! The metrics as Prometheus itself reads them: rendered from statuses and
//! from journals written by lab's own journal writer, parsed by Debian's
//! python3-prometheus-client (`text_string_to_metric_families`, the
//! reference parser of the text format) and linted by `promtool check
//! metrics` (Debian's prometheus: the naming conventions). Both come with
//! `./dev setup`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use lab_core::health::CheckResult;
use lab_core::metadata::Criticality;
use lab_core::metrics::{fleet_metrics, machine_metrics, write_atomic};
use lab_core::status::{Generation, MachineStatus};
use lab_core::store::dir::StateDir;
use lab_core::store::history::History;
use lab_core::store::journal::{Entry, Journal, StepState};
use lab_core::store::record::{Outcome, RunStart, StepDetail};

const PYTHON: &str = "/usr/bin/python3";

/// One sample: its name, labels and value.
type Sample = (String, BTreeMap<String, String>, f64);

/// (name, labels, value) of every sample, as the reference parser reads `text`.
fn parse(text: &str) -> Vec<Sample> {
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value, family.type, family.documentation])
print(json.dumps(out))
"#;
    let mut child = Command::new(PYTHON)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Debian's python3 (run ./dev setup)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the metrics (python3-prometheus-client missing? ./dev setup): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each row: the sample, then its family's type and help.
    type Row = (String, BTreeMap<String, String>, f64, String, String);
    let rows: Vec<Row> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|(name, labels, value, _, help)| {
            assert!(!help.is_empty(), "{name} has a help text");
            (name, labels, value)
        })
        .collect()
}

fn promtool_lint(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus; run ./dev setup)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}\n{text}");
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| *v)
        .collect();
    assert!(hits.len() <= 1, "{name} {labels:?} names one series, not {}", hits.len());
    hits.first().copied()
}

fn check(machine: &str, index: usize, label: &str, required: bool, passed: bool) -> CheckResult {
    serde_json::from_value(serde_json::json!({
        "machine": machine, "index": index, "check": label, "type": "http", "required": required,
        "runOn": "controller", "passed": passed, "latencyMs": 3, "message": if passed { "200" } else { "503" },
        "via": "controller"
    }))
    .unwrap()
}

fn statuses() -> Vec<MachineStatus> {
    let base = MachineStatus {
        machine: String::new(),
        reachable: true,
        error: None,
        healthy: Some(true),
        failing: vec![],
        current_system: Some("/nix/store/a-system".into()),
        expected_system: Some("/nix/store/a-system".into()),
        generation: Generation::UpToDate,
        needs_reboot: None,
        uptime_seconds: Some(3600),
        last_run: None,
        role: "web".into(),
        groups: vec!["web".into(), "edge".into()],
        criticality: Criticality::High,
        checks: vec![],
        last_deploy_ms: Some(1_700_000_000_000),
        last_reboot_ms: None,
    };
    vec![
        MachineStatus {
            machine: "db".into(),
            role: "database".into(),
            groups: vec![],
            criticality: Criticality::Critical,
            healthy: Some(false),
            failing: vec!["http http://localhost:5432/: 503".into()],
            checks: vec![
                check("db", 0, "http http://localhost:5432/", true, false),
                check("db", 1, "tcp localhost:22", false, true),
            ],
            generation: Generation::Outdated,
            needs_reboot: Some("kernel".into()),
            ..base.clone()
        },
        MachineStatus {
            machine: "web".into(),
            checks: vec![check("web", 0, "http http://localhost/", true, true)],
            ..base.clone()
        },
        MachineStatus {
            machine: "gone".into(),
            reachable: false,
            error: Some("ssh: timeout".into()),
            healthy: None,
            current_system: None,
            generation: Generation::Unknown,
            uptime_seconds: None,
            last_deploy_ms: None,
            ..base
        },
    ]
}

fn history(dir: &std::path::Path) -> History {
    let state = StateDir::new(dir);
    let step = |step: &str, machine: &str, state: StepState, detail: StepDetail| Entry::Step {
        step: step.into(),
        machine: machine.into(),
        state,
        detail,
    };
    let mut journal = Journal::create(&state.journal_path("r1"), "r1").unwrap();
    for entry in [
        Entry::RunStarted { plan_hash: "h".into(), command: vec!["deploy".into()], detail: RunStart::default() },
        step("deploy/web/build", "web", StepState::Started, StepDetail::None),
        step("deploy/web/build", "web", StepState::Finished, StepDetail::None),
        step("deploy/web/activate", "web", StepState::Started, StepDetail::None),
        step("deploy/web/activate", "web", StepState::Finished, StepDetail::None),
        step("deploy/db/activate", "db", StepState::Started, StepDetail::None),
        step(
            "deploy/db/activate",
            "db",
            StepState::RolledBack,
            StepDetail::RolledBack { reason: "unhealthy".into(), system: "/nix/store/old".into(), healthy: true },
        ),
        step("deploy/gone/activate", "gone", StepState::Skipped, StepDetail::Skipped { reason: "x".into() }),
        Entry::RunFinished { outcome: Outcome::Failed },
    ] {
        journal.append(entry).unwrap();
    }
    History::read(&state)
}

#[test]
fn fleet_metrics_parse_with_the_reference_parser_and_say_what_the_statuses_and_journals_say() {
    let dir = tempfile::tempdir().unwrap();
    let history = history(dir.path());
    let now = 1_700_000_600_000;
    let text = fleet_metrics(&statuses(), Some(now - 1000), &history, now).unwrap();
    promtool_lint(&text);
    let samples = parse(&text);
    let web = [("machine", "web"), ("role", "web"), ("groups", "edge,web"), ("criticality", "high")];
    let db = [("machine", "db"), ("role", "database"), ("groups", ""), ("criticality", "critical")];
    let gone = [("machine", "gone")];
    assert_eq!(value(&samples, "lab_machine_reachable", &web), Some(1.0));
    assert_eq!(value(&samples, "lab_machine_reachable", &gone), Some(0.0));
    assert_eq!(value(&samples, "lab_machine_healthy", &web), Some(1.0));
    assert_eq!(value(&samples, "lab_machine_healthy", &db), Some(0.0));
    assert_eq!(value(&samples, "lab_machine_healthy", &gone), Some(0.0));
    let failing = [("machine", "db"), ("check", "http http://localhost:5432/"), ("required", "true")];
    assert_eq!(value(&samples, "lab_machine_health_check_passed", &failing), Some(0.0));
    let optional = [("machine", "db"), ("index", "1"), ("required", "false")];
    assert_eq!(value(&samples, "lab_machine_health_check_passed", &optional), Some(1.0));
    assert_eq!(value(&samples, "lab_machine_health_check_passed", &gone), None, "not reached: no checks");
    assert_eq!(value(&samples, "lab_machine_up_to_date", &web), Some(1.0));
    assert_eq!(value(&samples, "lab_machine_up_to_date", &db), Some(0.0));
    assert_eq!(value(&samples, "lab_machine_up_to_date", &gone), None, "unknown is left out");
    assert_eq!(value(&samples, "lab_machine_reboot_required", &db), Some(1.0));
    assert_eq!(value(&samples, "lab_machine_reboot_required", &web), Some(0.0));
    assert_eq!(value(&samples, "lab_machine_reboot_required", &gone), None);
    assert_eq!(value(&samples, "lab_machine_uptime_seconds", &web), Some(3600.0));
    assert_eq!(value(&samples, "lab_machine_last_deploy_timestamp_seconds", &web), Some(1_700_000_000.0));
    assert_eq!(value(&samples, "lab_machine_last_deploy_age_seconds", &web), Some(600.0));
    assert_eq!(value(&samples, "lab_machine_last_reboot_age_seconds", &web), None);
    assert_eq!(value(&samples, "lab_status_probe_timestamp_seconds", &[]), Some(1_700_000_599.0));

    // The runs, from the journal.
    let steps =
        |action: &str, outcome: &str| value(&samples, "lab_steps_total", &[("action", action), ("outcome", outcome)]);
    assert_eq!(steps("activate", "finished"), Some(1.0));
    assert_eq!(steps("activate", "rolled-back"), Some(1.0));
    assert_eq!(steps("activate", "skipped"), Some(1.0));
    assert_eq!(steps("build", "finished"), Some(1.0));
    assert_eq!(value(&samples, "lab_rollbacks_total", &[("machine", "db")]), Some(1.0));
    assert_eq!(value(&samples, "lab_runs_total", &[("command", "deploy"), ("outcome", "failed")]), Some(1.0));
    let finished = history.runs[0].finished_ms.unwrap() as f64 / 1000.0;
    assert_eq!(value(&samples, "lab_last_run_timestamp_seconds", &[]), Some(finished));
    assert_eq!(value(&samples, "lab_last_run_outcome", &[("outcome", "failed")]), Some(1.0));
    assert_eq!(value(&samples, "lab_last_run_outcome", &[("outcome", "success")]), Some(0.0));
    // Two activations started and ended (one finished, one rolled back), one build.
    assert_eq!(value(&samples, "lab_step_duration_seconds_count", &[("action", "activate")]), Some(2.0));
    assert_eq!(value(&samples, "lab_step_duration_seconds_count", &[("action", "build")]), Some(1.0));
    assert_eq!(value(&samples, "lab_step_duration_seconds_count", &[("action", "reboot")]), Some(0.0));
    let inf = value(&samples, "lab_step_duration_seconds_bucket", &[("action", "activate"), ("le", "+Inf")]);
    assert_eq!(inf, Some(2.0));
}

#[test]
fn the_textfile_holds_the_machine_gauges_only_and_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.prom");
    std::fs::write(&path, "old\n").unwrap();
    let text = machine_metrics(&statuses(), 1_700_000_000_000, 1_700_000_000_000).unwrap();
    write_atomic(&path, &text).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, text);
    promtool_lint(&written);
    let samples = parse(&written);
    assert!(samples.iter().all(|(n, _, _)| n.starts_with("lab_machine_") || n == "lab_status_probe_timestamp_seconds"));
    assert_eq!(value(&samples, "lab_machine_reachable", &[("machine", "db")]), Some(1.0));
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["lab.prom"], "no temporary file left behind");
    let missing = dir.path().join("no/such/dir/lab.prom");
    let err = write_atomic(&missing, &text).unwrap_err().to_string();
    assert!(err.contains("no/such/dir/lab.prom") && err.contains("writable"), "{err}");
}

//! The bad-input catalogue (docs/bad-input.md), library side: broken Nix,
//! hostile names, values ssh cannot be given, absurd numbers. Each case
//! gives a clear error naming the machine and the field, and runs nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab_core::check::check;
use lab_core::eval::{evaluate, EvalError, EvalOptions, Evaluation, Source};
use lab_core::graph::{Expand, Fleet, Limits, Selector};
use lab_core::metadata::{parse_machine, Machine};
use lab_core::plan::{Plan, PlanKind};
use serde_json::{json, Value};

fn fleets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleets")
}

fn jobs(n: usize) -> EvalOptions {
    EvalOptions { jobs: n, ..EvalOptions::default() }
}

fn machine(name: &str, value: Value) -> Machine {
    parse_machine(name, value, None).unwrap()
}

fn evaluation(machines: Vec<Machine>) -> Evaluation {
    Evaluation { machines: machines.into_iter().map(|m| (m.name.clone(), m)).collect(), ..Evaluation::default() }
}

/// (machine, field, message) of every problem `lab check` finds.
fn problems(machines: Vec<Machine>) -> Vec<(String, String, String)> {
    check(&evaluation(machines)).problems.into_iter().map(|p| (p.machine, p.field, p.message)).collect()
}

#[test]
fn abort_and_infinite_recursion_name_the_host_and_keep_the_rest() {
    let evaluation = evaluate(&Source::File(fleets().join("broken-nix.nix")), &jobs(2)).unwrap();
    assert_eq!(evaluation.machines.keys().collect::<Vec<_>>(), ["node-00", "node-01"]);
    let failures: Vec<(&str, &str)> =
        evaluation.failures.iter().map(|f| (f.machine.as_str(), f.message.as_str())).collect();
    assert_eq!(
        failures,
        [
            ("aborts", "evaluation aborted with the following error message: 'aborts: this host is not ready'"),
            ("recursion", "infinite recursion encountered"),
        ]
    );
}

#[test]
fn a_fleet_file_that_aborts_is_one_error_saying_what_to_do() {
    let err = evaluate(&Source::File(fleets().join("abort.nix")), &jobs(1)).unwrap_err();
    assert!(matches!(err, EvalError::Fleet { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("abort.nix") && text.contains("'the fleet is not ready'; fix it"), "{text}");
}

/// Names that would run a command if they reached a shell, end a Nix
/// string, or break a line; `canary` is the file they would create.
fn hostile_names(canary: &Path) -> Vec<String> {
    let c = canary.display();
    vec![
        format!("$(touch {c})"),
        format!("`touch {c}`"),
        format!("a;touch {c}"),
        format!("-oProxyCommand=touch {c}"),
        "a\"; builtins.abort \"x".into(),
        "it's".into(),
        "new\nline".into(),
        "ünïcødé-✓".into(),
        "x".repeat(10_000),
    ]
}

#[test]
fn hostile_names_reach_nix_as_data_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let names = hostile_names(&canary);
    std::fs::write(dir.path().join("names.json"), serde_json::to_string(&names).unwrap()).unwrap();
    // A broken host makes lab read the chunk again host by host, so every
    // name also travels as an `only` argument.
    let lib = fleets().join("lib.nix");
    let broken = fleets().join("hosts/missing-attribute.nix");
    let fleet = format!(
        "let lib = import {}; names = builtins.fromJSON (builtins.readFile ./names.json); in\n\
         {{ nixosConfigurations = builtins.listToAttrs (map (n: {{ name = n; value = lib.system (lib.metadata {{ name = \"h\"; role = \"r\"; }}); }}) names) // {{ broken = import {}; }}; }}\n",
        lib.display(),
        broken.display()
    );
    std::fs::write(dir.path().join("fleet.nix"), fleet).unwrap();
    for n in [1, 3] {
        let evaluation = evaluate(&Source::File(dir.path().join("fleet.nix")), &jobs(n)).unwrap();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(evaluation.machines.keys().cloned().collect::<Vec<_>>(), expected, "jobs {n}");
        assert_eq!(evaluation.failures.len(), 1);
    }
    assert!(!canary.exists(), "a name ran as a command");
}

#[test]
fn check_refuses_names_and_targets_ssh_cannot_be_given() {
    let canary = Path::new("/tmp/lab-bad-input-canary");
    let mut machines: Vec<Machine> =
        hostile_names(canary).iter().map(|n| machine(n, json!({"role": "r", "rebootOrder": 0}))).collect();
    machines.push(machine("ok-name", json!({"role": "r", "rebootOrder": 0, "targetHost": "-oProxyCommand=sh"})));
    machines.push(machine("user", json!({"role": "r", "rebootOrder": 0, "targetUser": "root@evil"})));
    machines.push(machine("fine", json!({"role": "r", "rebootOrder": 0, "targetHost": "ünï", "targetPort": 2222})));
    let found = problems(machines);
    let about = |name: &str, field: &str| {
        found.iter().filter(|(m, f, _)| m == name && f == field).map(|(_, _, msg)| msg.as_str()).collect::<Vec<_>>()
    };
    for name in ["$(touch /tmp/lab-bad-input-canary)", "a;touch /tmp/lab-bad-input-canary", "it's", "ünïcødé-✓"] {
        let messages = about(name, "targetHost");
        assert_eq!(messages.len(), 1, "{name}: {found:#?}");
        assert!(messages[0].starts_with("targetHost is unset, so lab would use the name: "), "{}", messages[0]);
        assert!(messages[0].ends_with("set lab.machine.targetHost to the machine's address"), "{}", messages[0]);
    }
    assert_eq!(about(&"x".repeat(10_000), "targetHost").len(), 1, "longer than DNS allows");
    assert_eq!(
        about("new\nline", "name"),
        ["the name \"new\\nline\" holds a control character, which garbles every listing; rename the configuration"]
    );
    assert!(about("ok-name", "targetHost")[0].starts_with("\"-oProxyCommand=sh\" is not a host name or address"));
    assert!(about("user", "targetUser")[0].starts_with("\"root@evil\" is not a user name lab can pass to ssh"));
    assert_eq!(about("fine", "targetHost").len(), 1, "non-ASCII host names are refused too (use punycode)");
    // Shown as text, a hostile name cannot forge a line.
    let report = check(&evaluation(vec![machine("new\nline", json!({"role": "r", "rebootOrder": 0}))]));
    assert!(report.problems.iter().all(|p| !p.to_string().contains('\n')), "{:?}", report.problems);
}

#[test]
fn absurd_numbers_are_refused_and_never_overflow() {
    let max = i64::MAX;
    let huge = machine(
        "huge",
        json!({"role": "r", "rebootOrder": max, "orchestration": {"rebootDelay": max, "rebootTimeout": max,
               "healthyDeadline": max, "minHealthyTime": max},
               "healthChecks": [{"type": "command", "command": "true", "timeout": max, "interval": max,
                                 "initialDelay": max, "successThreshold": max}]}),
    );
    let found = problems(vec![huge.clone()]);
    let fields: Vec<&str> = found.iter().map(|(_, f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "orchestration.rebootDelay",
            "orchestration.healthyDeadline",
            "orchestration.minHealthyTime",
            "orchestration.rebootTimeout",
            "healthChecks[0].timeout",
            "healthChecks[0].interval",
            "healthChecks[0].initialDelay",
        ]
    );
    assert!(found[0].2.ends_with("is more than a year; use at most 31622400 (the value is in seconds)"));
    // A plan of such a fleet saturates instead of overflowing.
    let fleet = Fleet::new([huge]).unwrap();
    for kind in [PlanKind::Reboot, PlanKind::Deploy] {
        let plan = Plan::new(kind, &fleet, &Limits::default());
        assert_eq!(plan.worst_case_seconds, u64::MAX);
        assert!(!plan.render_text().is_empty());
    }
    // A timeout past what a clock can hold is no deadline, not a panic.
    let options = EvalOptions { timeout: Some(Duration::from_secs(u64::MAX)), ..jobs(1) };
    assert_eq!(evaluate(&Source::File(fleets().join("fleet-1.nix")), &options).unwrap().machines.len(), 1);
}

#[test]
fn ten_thousand_character_names_stay_fast() {
    let long = "x".repeat(10_000);
    let machines: BTreeMap<String, Machine> = (0..50)
        .map(|i| {
            let name = format!("{long}{i:02}");
            (name.clone(), machine(&name, json!({"role": "r", "rebootOrder": 0})))
        })
        .collect();
    let fleet = Fleet::from_map(&machines).unwrap();
    let started = Instant::now();
    let typo = format!("{long}9");
    let err = fleet.select(&typo.parse::<Selector>().unwrap(), Expand::default()).unwrap_err().to_string();
    assert!(err.contains("selects no machine"), "{}", &err[..200]);
    let lookup = evaluation(machines.into_values().collect()).find(&typo).unwrap_err().to_string();
    assert!(lookup.starts_with("no machine named"));
    // A bound against a quadratic blow-up (minutes), not a measurement.
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

//! One fleet contract (issue 16, item 4): every source reports the same
//! problems with the same exit codes and the same `--json`; the JSON form
//! of a fleet has its own schema (`lab schema --fleet`, committed as
//! schema/lab-fleet.schema.json), which `lab machines --json` satisfies and
//! `--json-file` reads back unchanged; duplicate keys are an error naming
//! the key; `--json-file -` reads standard input; schema and parser agree
//! on integers written as `1.0`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{json, Value};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lab_in(cache: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let mut child = crate::util::lab()
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A validator for `schema` (draft 2020-12, by an independent implementation).
fn validator(schema: &Value) -> impl Fn(&Value) -> Result<(), String> {
    let id = schema["$id"].as_str().unwrap().to_string();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&id, schema.clone()).unwrap();
    let index = compiler.compile(&id, &mut schemas).unwrap();
    move |instance: &Value| schemas.validate(instance, index).map_err(|e| format!("{e:#}"))
}

/// The issue's broken fleet: a missing role, `rebootOrder = "x"`, an empty
/// role and an unknown dependency, beside two sound machines.
fn broken_json() -> Value {
    json!({
        "good": { "role": "server", "rebootOrder": 0, "targetHost": "good.lan" },
        "also-good": { "role": "server", "rebootOrder": 1, "targetHost": "also-good.lan", "dependencies": ["good"] },
        "missing-role": { "rebootOrder": 0, "targetHost": "m.lan" },
        "bad-order": { "role": "server", "rebootOrder": "x", "targetHost": "b.lan" },
        "empty-role": { "role": "", "rebootOrder": 0, "targetHost": "e.lan" },
        "unknown-dep": { "role": "server", "rebootOrder": 0, "targetHost": "u.lan", "dependencies": ["ghost"] },
    })
}

/// The same fleet as a Nix file whose configurations set `lab.machine`.
fn broken_nix() -> String {
    let mut hosts = String::new();
    for (name, value) in broken_json().as_object().unwrap() {
        let machine = value.to_string().replace('\\', "\\\\");
        hosts.push_str(&format!(
            "    {name}.config = {{ networking.hostName = \"{name}\"; lab.machine = builtins.fromJSON ''{machine}''; }};\n"
        ));
    }
    format!("{{\n  nixosConfigurations = {{\n{hosts}  }};\n}}\n")
}

/// What `check --json` says, minus how each source words a failure.
fn verdict(check: &Value) -> Value {
    let failed: Vec<&Value> = check["failures"].as_array().unwrap().iter().map(|f| &f["machine"]).collect();
    json!({ "clean": check["clean"], "failed": failed, "problems": check["problems"] })
}

#[test]
fn every_source_reports_the_same_problems_with_the_same_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let json_file = dir.path().join("fleet.json");
    let nix_file = dir.path().join("fleet.nix");
    std::fs::write(&json_file, serde_json::to_string_pretty(&broken_json()).unwrap()).unwrap();
    std::fs::write(&nix_file, broken_nix()).unwrap();
    let json_text = std::fs::read_to_string(&json_file).unwrap();
    let sources: [(&str, Vec<&str>, Option<&str>); 3] = [
        ("--file", vec!["--file", nix_file.to_str().unwrap()], None),
        ("--json-file", vec!["--json-file", json_file.to_str().unwrap()], None),
        ("--json-file -", vec!["--json-file", "-"], Some(&json_text)),
    ];
    let mut verdicts = Vec::new();
    for (label, source, stdin) in &sources {
        let run = |args: &[&str]| lab_in(&cache, &[source.as_slice(), args].concat(), *stdin);
        let check = run(&["check", "--json"]);
        assert_eq!(check.code, 1, "{label}: {}", check.stderr);
        let report: Value =
            serde_json::from_str(&check.stdout).unwrap_or_else(|e| panic!("{label}: {e}: {}", check.stdout));
        let v = verdict(&report);
        assert_eq!(v["failed"], json!(["bad-order", "missing-role"]), "{label}: {report:#}");
        let errors: Vec<(&str, &str)> = report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["severity"] == "error")
            .map(|p| (p["machine"].as_str().unwrap(), p["field"].as_str().unwrap()))
            .collect();
        assert_eq!(errors, [("empty-role", "role"), ("unknown-dep", "dependencies[0]")], "{label}");
        verdicts.push(v);

        let text = run(&["check"]);
        assert_eq!(text.code, 1, "{label}");
        assert!(
            text.stdout.ends_with("6 machines checked: 2 failed to evaluate, 2 errors, 0 warnings\n"),
            "{label}: {}",
            text.stdout
        );

        // The machines that read are listed; the failed ones are named on stderr.
        let machines = run(&["machines", "--json"]);
        assert_eq!(machines.code, 1, "{label}: {}", machines.stderr);
        let listed: Value = serde_json::from_str(&machines.stdout).unwrap();
        let names: Vec<&String> = listed.as_object().unwrap().keys().collect();
        assert_eq!(names, ["also-good", "empty-role", "good", "unknown-dep"], "{label}");
        assert!(machines.stderr.contains("`bad-order`") && machines.stderr.contains("`missing-role`"), "{label}");

        // Work that needs none of the broken machines goes on, as for any source.
        let sequence = run(&["sequence", "--on", "also-good", "--json"]);
        assert_eq!(sequence.code, 0, "{label}: {}", sequence.stderr);
        let blocked = run(&["sequence"]);
        assert_eq!(blocked.code, 1, "{label}: {}", blocked.stderr);
    }
    assert_eq!(verdicts[0], verdicts[1]);
    assert_eq!(verdicts[1], verdicts[2]);
}

#[test]
fn a_key_given_twice_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cases = [
        (
            r#"{"a": {"role": "x", "rebootOrder": 0}, "a": {"role": "y", "rebootOrder": 1}}"#,
            "the key `a` is given twice (at a)",
        ),
        (
            r#"{"a": {"role": "x", "rebootOrder": 0, "orchestration": {"rebootDelay": 1, "rebootDelay": 2}}}"#,
            "the key `rebootDelay` is given twice (at a.orchestration.rebootDelay)",
        ),
    ];
    for (text, expected) in cases {
        let path = dir.path().join("dup.json");
        std::fs::write(&path, text).unwrap();
        for source in [vec!["--json-file", path.to_str().unwrap()], vec!["--json-file", "-"]] {
            let out = lab_in(&cache, &[source.as_slice(), &["machines"]].concat(), Some(text));
            assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{}", out.stderr);
            assert!(out.stderr.contains(expected), "{}", out.stderr);
        }
    }
}

#[test]
fn the_json_form_has_its_schema_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let schema = lab_in(&cache, &["schema", "--fleet"], None);
    assert_eq!(schema.code, 0);
    let committed = std::fs::read_to_string(repo().join("schema/lab-fleet.schema.json")).unwrap();
    assert_eq!(
        schema.stdout, committed,
        "schema/lab-fleet.schema.json is stale; regenerate it with `cargo run -q -p lab-cli -- schema --fleet > schema/lab-fleet.schema.json`"
    );
    let valid = validator(&serde_json::from_str(&schema.stdout).unwrap());

    // The example fleet (real nix), and a fixture with every kind of check.
    let example = repo().join("hosts/fleet.nix");
    let fixture = repo().join("lab-core/tests/fixtures/fleets/example.json");
    for source in [["--file", example.to_str().unwrap()], ["--json-file", fixture.to_str().unwrap()]] {
        let first = lab_in(&cache, &[&source[..], &["machines", "--json"]].concat(), None);
        assert_eq!(first.code, 0, "{}", first.stderr);
        let printed: Value = serde_json::from_str(&first.stdout).unwrap();
        valid(&printed).unwrap_or_else(|e| panic!("lab machines --json {source:?} breaks its schema: {e}"));
        // Read back from a file and from stdin: the same text, the same order.
        let path = dir.path().join("round.json");
        std::fs::write(&path, &first.stdout).unwrap();
        let again = lab_in(&cache, &["--json-file", path.to_str().unwrap(), "machines", "--json"], None);
        assert_eq!((again.code, &again.stdout), (0, &first.stdout), "{}", again.stderr);
        let piped = lab_in(&cache, &["--json-file", "-", "machines", "--json"], Some(&first.stdout));
        assert_eq!((piped.code, &piped.stdout), (0, &first.stdout), "{}", piped.stderr);
        let order = |args: &[&str]| lab_in(&cache, &[args, &["sequence", "--max-parallel", "2"]].concat(), None).stdout;
        assert_eq!(order(&source), order(&["--json-file", path.to_str().unwrap()]));
    }
    // The schema refuses what the parser refuses.
    assert!(valid(&json!({ "a": { "role": "x", "rebootOrder": 0, "colour": "red" } })).is_err());
    assert!(valid(&json!({ "a": { "rebootOrder": 0 } })).is_err());
}

#[test]
fn schema_and_parser_agree_on_integers() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let machine = validator(&serde_json::from_str(&lab_in(&cache, &["schema"], None).stdout).unwrap());
    let fleet = validator(&serde_json::from_str(&lab_in(&cache, &["schema", "--fleet"], None).stdout).unwrap());
    let read = |text: &str| lab_in(&cache, &["--json-file", "-", "machines", "--json"], Some(text));
    // Integers written as 1.0 or 1e1: valid for the schema, read as integers.
    let text =
        r#"{"a": {"role": "x", "rebootOrder": 1.0, "targetPort": 2.2e1, "orchestration": {"rebootDelay": 1e1}}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    machine(&value["a"]).unwrap();
    fleet(&value).unwrap();
    let out = read(text);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (&printed["a"]["rebootOrder"], &printed["a"]["targetPort"], &printed["a"]["orchestration"]["rebootDelay"]),
        (&json!(1), &json!(22), &json!(10))
    );
    // 1.5 is no integer for either.
    let text = r#"{"a": {"role": "x", "rebootOrder": 1.5}, "b": {"role": "y", "rebootOrder": 0}}"#;
    let value: Value = serde_json::from_str(text).unwrap();
    assert!(machine(&value["a"]).is_err() && fleet(&value).is_err());
    let out = read(text);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("machine `a` does not evaluate: rebootOrder: invalid type: floating point `1.5`"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("\"b\""));
}

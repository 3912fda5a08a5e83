//! Malformed requests through the C entry points (docs/bad-input.md): NULL,
//! invalid UTF-8, malformed JSON, wrong types, unknown fields. Each is
//! `LAB_ERR_INVALID_ARGUMENT` (or the call's own error) with a JSON error
//! object whose message names the field and says what to pass.

use lab::{lab_check, lab_eval_nix, lab_graph, lab_machines, lab_plan, lab_sequence, lab_show, LabStatus};
use serde_json::{json, Value};

mod common;
use common::{call_raw, run, Entry, RunEntry};

const ENTRIES: [(&str, Entry); 7] = [
    ("machines", lab_machines),
    ("show", lab_show),
    ("check", lab_check),
    ("sequence", lab_sequence),
    ("plan", lab_plan),
    ("graph", lab_graph),
    ("eval_nix", lab_eval_nix),
];

fn invalid(entry: Entry, request: &[u8]) -> String {
    let (status, error) = call_raw(entry, Some(request));
    assert_eq!(status, LabStatus::LabErrInvalidArgument, "{error}");
    // A selection error is of kind "fleet"; every other one "invalid-argument".
    assert!(["invalid-argument", "fleet"].contains(&error["kind"].as_str().unwrap()), "{error}");
    error["message"].as_str().unwrap().to_string()
}

fn fleet_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("fleet.json");
    let fleet = json!({
        "router": { "role": "router", "rebootOrder": 0 },
        "web": { "role": "web", "rebootOrder": 1, "dependencies": ["router"] },
    });
    std::fs::write(&path, fleet.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn null_bad_utf8_and_bad_json_are_refused_by_every_entry_point() {
    for (name, entry) in ENTRIES {
        let (status, error) = call_raw(entry, None);
        assert_eq!(status, LabStatus::LabErrInvalidArgument, "{name}");
        assert_eq!(error["message"], "the request is NULL; pass a JSON object, e.g. \"{}\"", "{name}");
        assert!(invalid(entry, b"{\"jsonFile\": \"\xff\"}").starts_with("the request is not valid UTF-8"), "{name}");
        assert!(invalid(entry, b"{\"expr\": ").starts_with("the request is not valid: EOF"), "{name}");
        assert!(invalid(entry, b"").starts_with("the request is not valid"), "{name}");
        // NULL `out`: nothing to write the answer to, nothing written.
        // SAFETY: NULL out is part of the contract.
        assert_eq!(unsafe { entry(c"{}".as_ptr(), std::ptr::null_mut()) }, LabStatus::LabErrInvalidArgument);
    }
}

#[test]
fn wrong_types_and_unknown_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = fleet_file(&dir);
    let with = |extra: Value| {
        let mut request = json!({ "jsonFile": file });
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        request.to_string().into_bytes()
    };
    let cases: Vec<(Entry, Value, &str)> = vec![
        (lab_machines, json!([1]), "the request must be a JSON object"),
        (lab_machines, json!({ "jsonfile": "x" }), "the request is not valid: unknown field `jsonfile`, expected one of `flake`, `file`, `hostsDir`, `nixpkgs`, `jsonFile`"),
        (lab_machines, json!({ "jsonFile": 5 }), "the request is not valid: invalid type: integer `5`"),
        (lab_machines, json!({ "jsonFile": "a", "flake": "b" }), "more than one fleet source given (flake, json-file); pass exactly one"),
        (lab_machines, json!({ "hostsDir": "a" }), "a hosts directory needs a nixpkgs path"),
        (lab_show, json!({ "jsonFile": "a" }), "the request needs \"machine\": a string"),
        (lab_show, json!({ "jsonFile": "a", "machine": 7 }), "the request needs \"machine\": a string"),
    ];
    for (entry, request, expected) in cases {
        let message = invalid(entry, request.to_string().as_bytes());
        assert!(message.starts_with(expected), "{request}: {message}");
    }
    let order: Vec<(Value, &str)> = vec![
        (json!({ "on": 5 }), "\"on\" must be a string"),
        (json!({ "maxParallel": 0 }), "\"maxParallel\" must be a whole number of at least 1"),
        (json!({ "maxParallel": -1 }), "\"maxParallel\" must be a whole number of at least 1"),
        (json!({ "maxUnavailablePerGroup": "2" }), "\"maxUnavailablePerGroup\" must be a whole number of at least 1"),
        (json!({ "withDependencies": "yes" }), "\"withDependencies\" must be true or false"),
        (json!({ "on": "$(reboot)" }), "--on \"$(reboot)\": `$(reboot)` selects no machine"),
        (json!({ "on": "" }), "--on \"\": the expression is empty"),
        (json!({ "maxparallel": 2 }), "the request is not valid: unknown field `maxparallel`"),
    ];
    for (entry, kind) in [(lab_sequence as Entry, None), (lab_graph, None), (lab_plan, Some("reboot"))] {
        for (extra, expected) in &order {
            let mut extra = extra.clone();
            if let Some(kind) = kind {
                extra["kind"] = json!(kind);
            }
            let message = invalid(entry, &with(extra.clone()));
            assert!(message.starts_with(expected), "{extra}: {message}");
        }
    }
    for (kind, expected) in [
        (json!("upgrade"), "\"kind\" is \"upgrade\"; use \"reboot\" or \"deploy\""),
        (json!(1), "the request needs \"kind\": a string"),
    ] {
        assert_eq!(invalid(lab_plan, &with(json!({ "kind": kind }))), expected);
    }
    // An unknown machine is its own error, naming it.
    let (status, error) = call_raw(lab_show, Some(&with(json!({ "machine": "wbe" }))));
    assert_eq!(status, LabStatus::LabErrNotFound);
    assert_eq!(
        error,
        json!({ "kind": "unknown-machine", "machine": "wbe", "message": "no machine named `wbe` (did you mean `web`?)" })
    );
}

#[test]
fn eval_nix_requests_are_checked_and_their_arguments_stay_data() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "the request is not valid: missing field `expr`"),
        (json!({ "expr": 1 }), "the request is not valid: invalid type: integer `1`, expected a string"),
        (
            json!({ "expr": "1", "args": { "a": 1 } }),
            "the request is not valid: invalid type: integer `1`, expected a string",
        ),
        (json!({ "expr": "1", "timeout": -1 }), "the request is not valid: invalid value: integer `-1`"),
        (json!({ "expr": "1", "shell": "sh" }), "the request is not valid: unknown field `shell`"),
    ];
    for (request, expected) in cases {
        let message = invalid(lab_eval_nix, request.to_string().as_bytes());
        assert!(message.starts_with(expected), "{request}: {message}");
    }
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let hostile = format!("\"; builtins.abort \"x\" + \"$(touch {})", canary.display());
    let request = json!({
        "expr": "{ name, flag }: [ name flag ]",
        "args": { "name": hostile, "flag": "--help" },
        "timeout": u64::MAX,
    });
    let (status, value) = call_raw(lab_eval_nix, Some(request.to_string().as_bytes()));
    assert_eq!(status, LabStatus::LabOk, "{value}");
    assert_eq!(value, json!([hostile, "--help"]));
    // An expression that looks like a flag is still an expression.
    let (status, value) = call_raw(lab_eval_nix, Some(br#"{"expr": "-1"}"#));
    assert_eq!((status, value), (LabStatus::LabOk, json!(-1)));
    assert!(!canary.exists());
}

/// Each run kind takes its own fields and no other kind's; every field's
/// wrong value names it.
#[test]
fn long_runs_name_their_wrong_and_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = fleet_file(&dir);
    let cases: Vec<(RunEntry, Value, &str)> = vec![
        (lab::lab_deploy, json!({ "update": true }), "the request is not valid: unknown field `update`, expected one of `flake`, `file`, `hostsDir`, `nixpkgs`, `jsonFile`"),
        (lab::lab_reboot, json!({ "goal": "boot" }), "the request is not valid: unknown field `goal`"),
        (lab::lab_orchestrate, json!({ "onlyIfNeeded": true }), "the request is not valid: unknown field `onlyIfNeeded`"),
        (lab::lab_reboot, json!({ "keepGoing": 1 }), "\"keepGoing\" must be true or false"),
        (lab::lab_reboot, json!({ "maxFailures": 0 }), "\"maxFailures\" must be a whole number of at least 1"),
        (lab::lab_reboot, json!({ "stateDir": [] }), "\"stateDir\" must be a string"),
        (lab::lab_deploy, json!({ "escalate": "sudo" }), "\"escalate\" must be a list of strings, e.g. [\"sudo\", \"-H\", \"--\"]"),
        (lab::lab_deploy, json!({ "sshOptions": "A=b" }), "\"sshOptions\" must be a list of \"Key=Value\" strings"),
        (lab::lab_orchestrate, json!({ "evalTimeout": "soon" }), "\"evalTimeout\" is \"soon\"; give a number of seconds, e.g. 600"),
        (lab::lab_orchestrate, json!({ "evalJobs": -2 }), "\"evalJobs\" is -2; give a whole number (0: one per core)"),
    ];
    for (entry, mut request, expected) in cases {
        request["jsonFile"] = json!(file);
        request["dryRun"] = json!(true);
        let (status, error) = run(entry, &request);
        assert_eq!(status, LabStatus::LabErrInvalidArgument, "{request}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{request}: {message}");
    }
}

//! The lab.machine NixOS module and its twins: the Rust types and the JSON
//! Schema. Evaluation uses nixpkgs' real lib (LAB_NIXPKGS_LIB, else the
//! pinned copy in the shared folder beside the project root).

use std::path::{Path, PathBuf};
use std::process::Command;

use lab_core::metadata::{parse_machine, MachineMetadata};
use serde_json::{json, Value};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn committed_schema_matches_the_types() {
    let committed = std::fs::read_to_string(repo_root().join("schema/lab-machine.schema.json")).unwrap();
    let current = lab_core::schema::machine_schema_text();
    assert!(
        committed == current,
        "schema/lab-machine.schema.json is stale; regenerate it with `cargo run -q -p lab-cli -- schema > schema/lab-machine.schema.json`"
    );
    insta::assert_snapshot!("schema", current);
}

/// Every .nix file of the repository parses with the real nix.
#[test]
fn every_nix_file_parses() {
    let mut files = Vec::new();
    collect_nix_files(&repo_root(), &mut files);
    assert!(files.iter().any(|f| f.ends_with("nix/modules/lab-machine.nix")), "the module is among them");
    for file in &files {
        let out = Command::new("nix-instantiate").arg("--parse").arg(file).output().expect("nix-instantiate runs");
        assert!(out.status.success(), "{} does not parse:\n{}", file.display(), String::from_utf8_lossy(&out.stderr));
    }
}

fn collect_nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            collect_nix_files(&path, out);
        } else if name.ends_with(".nix") && !name.contains("syntax-error") {
            out.push(path);
        }
    }
}

/// nixpkgs' lib directory (LAB_NIXPKGS_LIB, else the pinned shared copy);
/// None, reported as a skip (a failure under CI), when there is none.
fn nixpkgs_lib() -> Option<PathBuf> {
    lab_testkit::nixpkgs_lib()
}

/// Evaluates the module for one host (given as JSON) with lib.evalModules.
fn eval_module(lib: &Path, host: &Value) -> Value {
    let root = repo_root();
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(root.join("lab-core/tests/fixtures/module/eval-module.nix"))
        .arg("--arg")
        .arg("libPath")
        .arg(lib)
        .arg("--arg")
        .arg("modulePath")
        .arg(root.join("nix/modules/lab-machine.nix"))
        .arg("--argstr")
        .arg("hostJSON")
        .arg(host.to_string())
        .output()
        .expect("nix-instantiate runs");
    assert!(out.status.success(), "module evaluation failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sleeper_service() -> Value {
    json!({
        "networking": {"hostName": "sleeper-service"},
        "services": {"nginx": {"enable": true}, "postgresql": {"enable": true}, "openssh": {"enable": false}},
        "lab": {"machine": {
            "role": "application-server",
            "groups": ["infrastructure", "database"],
            "rebootOrder": 1,
            "dependencies": [],
            "healthChecks": [
                {"type": "http", "url": "http://localhost:80/health"},
                {"type": "tcp", "port": 5432}
            ],
            "orchestration": {"deployStrategy": "rolling", "rebootDelay": 0, "criticalityLevel": "high"}
        }}
    })
}

#[test]
fn module_json_reads_into_the_types_unchanged() {
    let Some(lib) = nixpkgs_lib() else { return };
    let result = eval_module(&lib, &sleeper_service());
    assert_eq!(result["failed"], json!([]));
    let etc = result["etc"].as_str().unwrap();
    let machine = parse_machine("sleeper-service", serde_json::from_str(etc).unwrap(), None).unwrap();
    assert_eq!(machine.hostname.as_deref(), Some("sleeper-service"));
    assert_eq!(machine.services, ["nginx", "postgresql"]);
    assert_eq!(machine.target_host(), "sleeper-service");
    assert_eq!(serde_json::to_string(&machine).unwrap(), etc, "Rust writes back exactly what the module wrote");
}

#[test]
fn module_defaults_and_enums_match_the_types_and_schema() {
    let Some(lib) = nixpkgs_lib() else { return };
    let result = eval_module(&lib, &sleeper_service());
    let defaults = &result["defaults"];
    let enums = &result["enums"];

    // The module's defaults are the Rust defaults.
    let rust: MachineMetadata = serde_json::from_value(json!({"role": "r", "rebootOrder": 0})).unwrap();
    let rust = serde_json::to_value(&rust).unwrap();
    for key in ["groups", "dependencies", "healthChecks", "targetUser", "targetPort", "orchestration"] {
        assert_eq!(defaults[key], rust[key], "default of {key}");
    }
    let mut check_defaults = defaults["healthCheck"].clone();
    check_defaults["type"] = json!("command");
    check_defaults["command"] = json!("true");
    let check: lab_core::metadata::HealthCheck = serde_json::from_value(check_defaults.clone()).unwrap();
    assert_eq!(serde_json::to_value(check).unwrap(), check_defaults, "health check defaults");

    // The schema says the same defaults and enums.
    let schema = lab_core::schema::machine_schema();
    let defs = &schema["$defs"];
    for (name, value) in defaults["orchestration"].as_object().unwrap() {
        assert_eq!(
            &defs["Orchestration"]["properties"][name]["default"], value,
            "schema default of orchestration.{name}"
        );
    }
    for (name, value) in defaults["healthCheck"].as_object().unwrap() {
        if name != "type" {
            assert_eq!(
                &defs["healthCheck"]["properties"][name]["default"], value,
                "schema default of healthChecks.*.{name}"
            );
        }
    }
    for key in ["groups", "dependencies", "targetUser", "targetPort"] {
        assert_eq!(schema["properties"][key]["default"], defaults[key], "schema default of {key}");
    }
    let schema_enum = |def: &str| -> Value {
        defs[def]["oneOf"].as_array().unwrap().iter().map(|v| v["const"].clone()).collect::<Vec<_>>().into()
    };
    assert_eq!(schema_enum("DeployStrategy"), enums["deployStrategy"]);
    assert_eq!(schema_enum("Criticality"), enums["criticalityLevel"]);
    assert_eq!(schema_enum("CheckType"), enums["type"]);
    assert_eq!(schema_enum("RunOn"), enums["runOn"]);
}

#[test]
fn module_assertions_fire_on_bad_input() {
    let Some(lib) = nixpkgs_lib() else { return };
    let with = |patch: Value| {
        let mut host = sleeper_service();
        let machine = host["lab"]["machine"].as_object_mut().unwrap();
        for (k, v) in patch.as_object().unwrap() {
            machine.insert(k.clone(), v.clone());
        }
        eval_module(&lib, &host)["failed"].clone()
    };
    let cases = [
        (json!({"healthChecks": [{"type": "http"}]}), "lab.machine.healthChecks.0 (http): an http check needs `url`."),
        (json!({"healthChecks": [{"type": "tcp"}]}), "lab.machine.healthChecks.0 (tcp): a tcp check needs `port`."),
        (
            json!({"healthChecks": [{"type": "command"}]}),
            "lab.machine.healthChecks.0 (command): a command check needs `command`.",
        ),
        (
            json!({"healthChecks": [{"type": "tcp", "port": 70000}]}),
            "lab.machine.healthChecks.0 (tcp): port 70000 is outside 1..65535.",
        ),
        (
            json!({"healthChecks": [{"type": "tcp", "port": 22, "url": "http://x"}]}),
            "lab.machine.healthChecks.0 (tcp): url, headers, tlsVerify and expectedStatus apply only to http checks.",
        ),
        (
            json!({"healthChecks": [{"type": "http", "url": "http://x", "host": "y"}]}),
            "lab.machine.healthChecks.0 (http): host applies only to tcp checks.",
        ),
        (
            json!({"healthChecks": [{"type": "tcp", "port": 22, "timeout": 0}]}),
            "lab.machine.healthChecks.0 (tcp): timeout must be at least 1 second.",
        ),
        (json!({"targetPort": 0}), "lab.machine.targetPort: 0 is outside 1..65535."),
        (json!({"orchestration": {"rebootDelay": -1}}), "lab.machine.orchestration.rebootDelay must not be negative."),
        (
            json!({"orchestration": {"healthyDeadline": -1}}),
            "lab.machine.orchestration.healthyDeadline must not be negative.",
        ),
        (
            json!({"orchestration": {"minHealthyTime": -1}}),
            "lab.machine.orchestration.minHealthyTime must not be negative.",
        ),
        (
            json!({"orchestration": {"rebootTimeout": -1}}),
            "lab.machine.orchestration.rebootTimeout must not be negative.",
        ),
    ];
    for (patch, message) in cases {
        assert_eq!(with(patch.clone()), json!([message]), "patch {patch}");
    }
}

#[test]
fn services_that_throw_do_not_abort_evaluation() {
    let Some(lib) = nixpkgs_lib() else { return };
    // A removed option on a real NixOS system throws when read; the module
    // must count it as not enabled rather than fail the whole machine.
    let text =
        std::fs::read_to_string(repo_root().join("lab-core/tests/fixtures/module/throwing-service.nix")).unwrap();
    assert!(text.contains("throw"));
    let root = repo_root();
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(root.join("lab-core/tests/fixtures/module/throwing-service.nix"))
        .arg("--arg")
        .arg("libPath")
        .arg(&lib)
        .arg("--arg")
        .arg("modulePath")
        .arg(root.join("nix/modules/lab-machine.nix"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let services: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(services, json!(["nginx"]));
}

use lab_testkit::orchestrator_eval;

fn eval_orchestrator(lib: &Path, settings: &Value) -> Value {
    orchestrator_eval::eval(lib, settings, &json!({}))
}

#[test]
fn orchestrator_module_runs_lab_orchestrate_hardened_on_a_timer() {
    let Some(lib) = nixpkgs_lib() else { return };
    let disabled = eval_orchestrator(&lib, &json!({"flake": "x"}));
    assert_eq!(disabled["service"], Value::Null, "nothing without enable");

    let result = eval_orchestrator(
        &lib,
        &json!({"enable": true, "flake": "git+https://git.example/lab?ref=main",
                "maxParallel": 2, "extraArgs": ["--keep-going"], "onFailure": "echo failed",
                "schedule": "Sun 04:00"}),
    );
    let service = &result["service"];
    assert_eq!(
        service["ExecStart"],
        "/nix/store/00000000000000000000000000000000-lab/bin/lab orchestrate --flake 'git+https://git.example/lab?ref=main' --goal boot --max-parallel 2 --keep-going"
    );
    assert_eq!(service["User"], "lab-orchestrator");
    assert_eq!(service["NoNewPrivileges"], true);
    assert_eq!(service["ProtectSystem"], "strict");
    assert_eq!(service["CapabilityBoundingSet"], "");
    assert_eq!(service["StateDirectory"], "lab-orchestrator");
    assert_eq!(service["onFailure"], json!(["lab-orchestrator-failure.service"]));
    assert_eq!(result["timer"]["OnCalendar"], "Sun 04:00");
    assert_eq!(result["user"], true);
    assert_eq!(result["failureService"], true);
}

#[test]
fn orchestrator_module_passes_its_notify_hooks_to_the_run() {
    let Some(lib) = nixpkgs_lib() else { return };
    let plain = eval_orchestrator(&lib, &json!({"enable": true, "flake": "x"}));
    assert_eq!(plain["notifyText"], Value::Null, "no hooks, no LAB_NOTIFY_CONFIG");
    let result = eval_orchestrator(
        &lib,
        &json!({"enable": true, "flake": "x",
                "notify": {"command": ["/bin/notify", "--to", "ops"], "webhook": "https://h.example/lab%20x", "timeout": 5}}),
    );
    // LAB_NOTIFY_CONFIG names the file; what it holds is what
    // `lab --notify-config` (and that variable) reads.
    let text = result["notifyText"].as_str().unwrap();
    let config: lab_core::notify::NotifyConfig = serde_json::from_str(text).unwrap();
    assert_eq!(config.command.unwrap(), ["/bin/notify", "--to", "ops"]);
    assert_eq!(config.webhook.as_deref(), Some("https://h.example/lab%20x"));
    assert_eq!(config.timeout, Some(5));
}

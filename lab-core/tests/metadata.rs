//! The JSON contract of lab.machine: real nix renders it, lab-core reads it
//! and writes it back byte for byte; bad input is refused with messages that
//! name the machine and the field.

use std::path::Path;
use std::process::Command;

use lab_core::metadata::{parse_fleet_json, parse_machine, validate, HealthCheck, MachineMetadata, MetadataError};
use serde_json::{json, Value};

fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// `nix-instantiate --eval --strict --json FILE`, as the real nix prints it.
fn nix_json(file: &str) -> String {
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(file)
        .output()
        .expect("nix-instantiate runs (./dev setup installs nix-bin)");
    assert!(out.status.success(), "nix failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim_end().to_string()
}

#[test]
fn nix_json_round_trips_byte_for_byte() {
    let nix = nix_json(&fixture("metadata/machines.nix"));
    let fleet = parse_fleet_json(&nix, None).expect("fixture parses");
    assert_eq!(fleet.len(), 2);
    let back = serde_json::to_string(&fleet).unwrap();
    assert_eq!(back, nix, "Rust must write exactly what nix wrote");
    // And the typed view is what the Nix says.
    let edge = &fleet["edge"];
    assert_eq!(edge.target_host(), "10.0.0.2");
    assert!(
        matches!(&edge.metadata.health_checks[2], HealthCheck::Command { command, .. } if command == "systemctl is-active caddy")
    );
    insta::assert_snapshot!("round_trip_pretty", serde_json::to_string_pretty(&fleet).unwrap());
}

#[test]
fn minimal_metadata_takes_the_module_defaults() {
    let machine = parse_machine("m", json!({"role": "web", "rebootOrder": 2}), None).unwrap();
    insta::assert_json_snapshot!("minimal_defaults", machine);
}

fn parse_err(value: Value) -> String {
    parse_machine("web-1", value, Some(Path::new("hosts/web-1/configuration.nix"))).unwrap_err().to_string()
}

#[test]
fn unknown_fields_are_named() {
    assert_eq!(
        parse_err(json!({"role": "web", "rebootOrder": 1, "rebootorder": 2})),
        "machine `web-1` (hosts/web-1/configuration.nix): rebootorder: unknown field `rebootorder`, expected one of `dependencies`, `groups`, `healthChecks`, `orchestration`, `rebootOrder`, `role`, `targetHost`, `targetPort`, `targetUser`"
    );
    assert_eq!(
        parse_err(json!({"role": "web", "rebootOrder": 1, "orchestration": {"rebootDelays": 1}})),
        "machine `web-1` (hosts/web-1/configuration.nix): orchestration.rebootDelays: unknown field `rebootDelays`, expected one of `activationTimeout`, `confirmTimeout`, `criticalityLevel`, `deployStrategy`, `healthyDeadline`, `minHealthyTime`, `rebootDelay`, `rebootTimeout`"
    );
    let err =
        parse_err(json!({"role": "web", "rebootOrder": 1, "healthChecks": [{"type": "tcp", "port": 1, "prot": 2}]}));
    assert!(
        err.starts_with("machine `web-1` (hosts/web-1/configuration.nix): healthChecks[0].prot: unknown field `prot`"),
        "{err}"
    );
}

#[test]
fn wrong_types_and_enums_are_named() {
    assert_eq!(
        parse_err(json!({"role": "web", "rebootOrder": "1"})),
        "machine `web-1` (hosts/web-1/configuration.nix): rebootOrder: invalid type: string \"1\", expected i64"
    );
    assert_eq!(
        parse_err(json!({"role": "web", "rebootOrder": 1, "orchestration": {"deployStrategy": "canary"}})),
        "machine `web-1` (hosts/web-1/configuration.nix): orchestration.deployStrategy: unknown variant `canary`, expected one of `rolling`, `blue-green`, `recreate`"
    );
    assert_eq!(
        parse_err(json!({"rebootOrder": 1})),
        "machine `web-1` (hosts/web-1/configuration.nix): .: missing field `role`"
    );
}

#[test]
fn a_check_cannot_carry_another_kinds_fields() {
    assert_eq!(
        parse_err(json!({"role": "db", "rebootOrder": 1, "healthChecks": [{"type": "tcp", "port": 5432, "url": "http://x"}]})),
        "machine `web-1` (hosts/web-1/configuration.nix): healthChecks[0]: a tcp check cannot set url; remove it or change `type`"
    );
    assert_eq!(
        parse_err(json!({"role": "db", "rebootOrder": 1, "healthChecks": [{"type": "http", "url": "http://x", "port": 1, "command": "true"}]})),
        "machine `web-1` (hosts/web-1/configuration.nix): healthChecks[0]: an http check cannot set port, command; remove it or change `type`"
    );
    assert_eq!(
        parse_err(json!({"role": "db", "rebootOrder": 1, "healthChecks": [{"type": "http"}]})),
        "machine `web-1` (hosts/web-1/configuration.nix): healthChecks[0]: an http check needs `url`, e.g. url = \"http://localhost/health\""
    );
    assert_eq!(
        parse_err(json!({"role": "db", "rebootOrder": 1, "healthChecks": [{"type": "tcp"}]})),
        "machine `web-1` (hosts/web-1/configuration.nix): healthChecks[0]: a tcp check needs `port`, e.g. port = 5432"
    );
    assert_eq!(
        parse_err(json!({"role": "db", "rebootOrder": 1, "healthChecks": [{"type": "command", "tlsVerify": false}]})),
        "machine `web-1` (hosts/web-1/configuration.nix): healthChecks[0]: a command check cannot set tlsVerify; remove it or change `type`"
    );
}

#[test]
fn a_fleet_reports_every_broken_machine() {
    let errors =
        parse_fleet_json(r#"{"a": {"role": "x"}, "b": {"role": "y", "rebootOrder": 1}, "c": 3}"#, None).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "machine `a`: .: missing field `rebootOrder`",
            "machine `c`: .: expected an object of lab.machine options, found a number"
        ]
    );
    let not_json = parse_fleet_json("[1]", Some(Path::new("fleet.json"))).unwrap_err();
    assert_eq!(
        not_json,
        vec![MetadataError::NotAFleet {
            file: Some("fleet.json".into()),
            message: "expected an object keyed by machine name (as `lab machines --json` prints), found a list".into()
        }]
    );
}

fn problems(name: &str, value: Value) -> Vec<String> {
    let metadata: MachineMetadata = serde_json::from_value(value).expect("shape is valid");
    validate(name, &metadata).iter().map(ToString::to_string).collect()
}

fn tcp(port: i64) -> Value {
    json!({"type": "tcp", "port": port})
}

#[test]
fn a_clean_machine_has_no_problems() {
    let nix = nix_json(&fixture("metadata/machines.nix"));
    for (name, machine) in parse_fleet_json(&nix, None).unwrap() {
        assert_eq!(validate(&name, &machine.metadata), vec![], "{name}");
    }
}

#[test]
fn every_validation_rule_has_its_message() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"role": " ", "rebootOrder": 1}), "error: machine `m`: role: role is empty; set lab.machine.role to what the machine does, e.g. \"web-server\""),
        (json!({"role": "r", "rebootOrder": 1, "groups": [""]}), "error: machine `m`: groups[0]: group name is empty; remove it or name the group"),
        (json!({"role": "r", "rebootOrder": 1, "dependencies": ["m"]}), "error: machine `m`: dependencies[0]: the machine depends on itself; remove \"m\" from lab.machine.dependencies"),
        (json!({"role": "r", "rebootOrder": 1, "dependencies": ["db", "db"]}), "error: machine `m`: dependencies[1]: \"db\" is listed twice; remove the second one"),
        (json!({"role": "r", "rebootOrder": 1, "targetHost": ""}), "error: machine `m`: targetHost: targetHost is empty; set it to the machine's address or leave it unset to use networking.hostName"),
        (json!({"role": "r", "rebootOrder": 1, "targetUser": ""}), "error: machine `m`: targetUser: targetUser is empty; set it to the ssh user, e.g. \"root\""),
        (json!({"role": "r", "rebootOrder": 1, "targetPort": 0}), "error: machine `m`: targetPort: port 0 is out of range; use a port between 1 and 65535"),
        (json!({"role": "r", "rebootOrder": 1, "orchestration": {"rebootDelay": -1}}), "error: machine `m`: orchestration.rebootDelay: -1 is negative; use 0 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "orchestration": {"healthyDeadline": -2}}), "error: machine `m`: orchestration.healthyDeadline: -2 is negative; use 0 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "orchestration": {"minHealthyTime": -3}}), "error: machine `m`: orchestration.minHealthyTime: -3 is negative; use 0 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "orchestration": {"rebootTimeout": -4}}), "error: machine `m`: orchestration.rebootTimeout: -4 is negative; use 0 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "orchestration": {"confirmTimeout": 0}}), "error: machine `m`: orchestration.confirmTimeout: 0 leaves no time at all; use 1 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "orchestration": {"activationTimeout": 0}}), "error: machine `m`: orchestration.activationTimeout: 0 leaves no time at all; use 1 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "orchestration": {"activationTimeout": -5}}), "error: machine `m`: orchestration.activationTimeout: -5 is negative; use 1 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [tcp(70000)]}), "error: machine `m`: healthChecks[0].port: port 70000 is out of range; use a port between 1 and 65535"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [tcp(1), tcp(1)]}), "error: machine `m`: healthChecks[1]: duplicates healthChecks[0] (tcp localhost:1); remove one"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "http", "url": "localhost/health"}]}), "error: machine `m`: healthChecks[0].url: \"localhost/health\" is not a valid URL (relative URL without a base); write it as http://HOST[:PORT]/PATH"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "http", "url": "ftp://nas/x"}]}), "error: machine `m`: healthChecks[0].url: \"ftp://nas/x\" uses the scheme `ftp`; use an http:// or https:// URL"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "http", "url": "http://localhost/", "runOn": "controller"}]}), "error: machine `m`: healthChecks[0].url: \"http://localhost/\" is local, and the check runs on the controller, so it would test the controller; use runOn = \"target\" or the machine's address"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "http", "url": "http://a/", "expectedStatus": []}]}), "error: machine `m`: healthChecks[0].expectedStatus: no status would pass; list codes or ranges such as \"200-299\""),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "http", "url": "http://a/", "expectedStatus": ["2xx"]}]}), "error: machine `m`: healthChecks[0].expectedStatus[0]: \"2xx\" is not a status code or range; use e.g. \"200\" or \"200-299\" (codes 100-599)"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "http", "url": "http://a/", "headers": {"Bad Name": "x"}}]}), "error: machine `m`: healthChecks[0].headers: \"Bad Name\" is not a valid header name; use letters, digits and dashes"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "tcp", "port": 22, "runOn": "controller"}]}), "error: machine `m`: healthChecks[0].host: a tcp check that runs on the controller needs `host`: without it, it would test the controller; set host or use runOn = \"target\""),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "tcp", "port": 22, "host": "127.0.0.1", "runOn": "controller"}]}), "error: machine `m`: healthChecks[0].host: \"127.0.0.1\" is local, and the check runs on the controller, so it would test the controller; use runOn = \"target\" or the machine's address"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "tcp", "port": 22, "host": ""}]}), "error: machine `m`: healthChecks[0].host: host is empty; leave it unset to check the machine itself"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "command", "command": ""}]}), "error: machine `m`: healthChecks[0].command: command is empty; give the command to run, e.g. \"systemctl is-active nginx\""),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "command", "command": "true", "timeout": 0}]}), "error: machine `m`: healthChecks[0].timeout: 0 is too small; give each attempt at least 1 second"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "command", "command": "true", "interval": -1}]}), "error: machine `m`: healthChecks[0].interval: -1 is negative; use 0 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "command", "command": "true", "initialDelay": -1}]}), "error: machine `m`: healthChecks[0].initialDelay: -1 is negative; use 0 or more seconds"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "command", "command": "true", "successThreshold": 0}]}), "error: machine `m`: healthChecks[0].successThreshold: 0 is too small; use 1 or more"),
        (json!({"role": "r", "rebootOrder": 1, "healthChecks": [{"type": "command", "command": "true", "failureThreshold": 0}]}), "error: machine `m`: healthChecks[0].failureThreshold: 0 is too small; use 1 or more"),
    ];
    for (input, expected) in cases {
        assert_eq!(problems("m", input.clone()), vec![expected.to_string()], "input: {input}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let found = problems(
        "m",
        json!({"role": "", "rebootOrder": 1, "targetPort": 99999, "dependencies": ["m"],
               "healthChecks": [{"type": "http", "url": "nope"}, tcp(0)]}),
    );
    assert_eq!(found.len(), 5, "{found:#?}");
}

//! Health checks that run on the controller and test a local address are a
//! mistake (they would test the controller, not the machine) unless the
//! machine's targetHost is the controller itself: localhost, a loopback
//! address, ::1, or this host's own name.

use lab_core::metadata::{parse_machine, validate};
use serde_json::{json, Value};

/// The problems' fields for one machine with `target` and these checks.
fn flagged(target: Option<&str>, checks: Value) -> Vec<String> {
    let mut metadata = json!({ "role": "r", "rebootOrder": 0, "healthChecks": checks });
    if let Some(target) = target {
        metadata["targetHost"] = json!(target);
    }
    let machine = parse_machine("m", metadata, None).unwrap();
    validate("m", &machine.metadata).into_iter().map(|p| p.field).collect()
}

fn local_checks() -> Value {
    json!([
        { "type": "http", "url": "http://localhost:8080/health", "runOn": "controller" },
        { "type": "tcp", "port": 22, "host": "127.0.0.1", "runOn": "controller" },
        { "type": "tcp", "port": 22, "runOn": "controller" },
        { "type": "http", "url": "http://[::1]/", "runOn": "controller" },
    ])
}

#[test]
fn local_checks_on_the_controller_are_flagged_for_another_machine() {
    let all = ["healthChecks[0].url", "healthChecks[1].host", "healthChecks[2].host", "healthChecks[3].url"];
    assert_eq!(flagged(None, local_checks()), all, "targetHost unset: the machine is elsewhere");
    assert_eq!(flagged(Some("web.example.org"), local_checks()), all);
    assert_eq!(flagged(Some("10.0.0.5"), local_checks()), all);
}

#[test]
fn local_checks_on_the_controller_are_fine_when_the_machine_is_the_controller() {
    let own = lab_core::exec::hostname();
    for target in ["localhost", "LocalHost", "127.0.0.1", "127.0.1.1", "::1", &own, &own.to_uppercase()] {
        assert_eq!(flagged(Some(target), local_checks()), Vec::<String>::new(), "targetHost {target}");
    }
    // Other problems of the same checks are still reported.
    let bad = json!([{ "type": "tcp", "port": 0, "host": "127.0.0.1", "runOn": "controller" }]);
    assert_eq!(flagged(Some("localhost"), bad), ["healthChecks[0].port"]);
}

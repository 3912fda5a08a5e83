//! One test per rule, with exact messages.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;

use serde_json::json;

use super::*;
use crate::metadata::{parse_machine, Severity};

/// A machine with `deps`, rebootOrder `order` and extra metadata fields.
fn machine(name: &str, deps: &[&str], order: i64, extra: serde_json::Value) -> Machine {
    let mut value = json!({ "role": "server", "rebootOrder": order, "dependencies": deps, "hostname": name });
    if let (Some(v), Some(e)) = (value.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    parse_machine(name, value, None).expect("test machine is valid")
}

fn plain(name: &str, deps: &[&str]) -> Machine {
    machine(name, deps, 1, json!({}))
}

/// A machine of `groups` with `criticality`, no dependencies.
fn grouped(name: &str, criticality: &str, groups: &[&str]) -> Machine {
    machine(name, &[], 1, json!({ "groups": groups, "orchestration": { "criticalityLevel": criticality } }))
}

fn map(machines: Vec<Machine>) -> BTreeMap<String, Machine> {
    machines.into_iter().map(|m| (m.name.clone(), m)).collect()
}

fn errors(machines: Vec<Machine>) -> Vec<Problem> {
    match Fleet::new(machines) {
        Err(FleetError::Invalid { problems }) => problems,
        Ok(_) => panic!("expected the fleet to be invalid"),
    }
}

fn names(machines: &[&Machine]) -> Vec<String> {
    machines.iter().map(|m| m.name.clone()).collect()
}

fn wave_names(fleet: &Fleet, limits: &Limits) -> Vec<Vec<String>> {
    fleet.waves(limits).iter().map(|w| names(w)).collect()
}

fn limits(max_parallel: usize, per_group: Option<usize>) -> Limits {
    Limits {
        max_parallel: NonZeroUsize::new(max_parallel).unwrap(),
        max_unavailable_per_group: per_group.and_then(NonZeroUsize::new),
    }
}

#[test]
fn unknown_dependency_suggests_the_closest_name() {
    let problems = errors(vec![plain("dns1", &[]), plain("web", &["dsn1"])]);
    assert_eq!(
        problems,
        vec![Problem::error(
            "web",
            "dependencies[0]",
            "no machine is called `dsn1` (did you mean `dns1`?); fix the name or remove it from lab.machine.dependencies"
        )]
    );
}

#[test]
fn unknown_dependency_without_a_close_name() {
    let problems = errors(vec![plain("dns1", &[]), plain("web", &["dns1", "database"])]);
    assert_eq!(problems[0].field, "dependencies[1]");
    assert_eq!(
        problems[0].message,
        "no machine is called `database`; fix the name or remove it from lab.machine.dependencies"
    );
}

#[test]
fn self_dependency_is_an_error_in_the_graph_but_left_to_validate_in_fleet_problems() {
    let problems = errors(vec![plain("a", &["a"])]);
    assert_eq!(
        problems,
        vec![Problem::error(
            "a",
            "dependencies[0]",
            "the machine depends on itself; remove \"a\" from lab.machine.dependencies"
        )]
    );
    // Same text as metadata::validate, which lab check runs too.
    assert_eq!(problems, crate::metadata::validate("a", &plain("a", &["a"]).metadata));
    assert_eq!(fleet_problems(&map(vec![plain("a", &["a"])])), vec![]);
}

#[test]
fn duplicate_names_are_errors() {
    let problems = errors(vec![plain("a", &[]), plain("b", &[]), plain("a", &["b"])]);
    assert_eq!(
        problems,
        vec![Problem::error("a", "name", "two machines are called `a`; give each machine its own name")]
    );
}

#[test]
fn a_cycle_is_reported_as_its_path() {
    let problems = errors(vec![plain("a", &["b"]), plain("b", &["c"]), plain("c", &["a"]), plain("d", &["a"])]);
    assert_eq!(
        problems,
        vec![Problem::error(
            "a",
            "dependencies[0]",
            "dependency cycle a -> b -> c -> a; machines on a cycle cannot be ordered: remove one of these dependencies"
        )]
    );
}

#[test]
fn every_machine_of_a_tangle_is_on_a_reported_cycle() {
    // Two cycles sharing `a`, plus a separate one.
    let fleet = map(vec![
        plain("a", &["b", "c"]),
        plain("b", &["a"]),
        plain("c", &["a"]),
        plain("x", &["y"]),
        plain("y", &["x"]),
    ]);
    assert_eq!(dependency_cycles(&fleet), vec![vec!["a", "b", "a"], vec!["c", "a", "c"], vec!["x", "y", "x"]]);
    let messages: Vec<String> = fleet_problems(&fleet).into_iter().map(|p| p.message).collect();
    assert!(messages[1].starts_with("dependency cycle c -> a -> c;"), "{messages:?}");
}

#[test]
fn reboot_order_contradicting_a_dependency_is_a_warning_naming_both() {
    let fleet = map(vec![machine("app", &["db"], 1, json!({})), machine("db", &[], 5, json!({}))]);
    let problems = fleet_problems(&fleet);
    assert_eq!(
        problems,
        vec![Problem::warning(
            "app",
            "rebootOrder",
            "rebootOrder 1 is lower than the rebootOrder 5 of `db`, which `app` depends on; the dependency wins and `db` goes first: set `app`'s rebootOrder to 5 or more (or lower `db`'s) so they agree"
        )]
    );
    assert_eq!(problems[0].severity, Severity::Warning);
    // A warning does not stop the fleet from being built; the dependency wins.
    let fleet = Fleet::from_map(&fleet).unwrap();
    assert_eq!(names(&fleet.order()), ["db", "app"]);
}

#[test]
fn duplicate_hostnames_and_targets_are_errors() {
    let fleet = map(vec![
        machine("a", &[], 1, json!({ "hostname": "box" })),
        machine("b", &[], 1, json!({ "hostname": "BOX" })),
        machine("c", &[], 1, json!({ "targetHost": "10.0.0.5" })),
        machine("d", &[], 1, json!({ "targetHost": "10.0.0.5" })),
        machine("e", &[], 1, json!({ "targetHost": "10.0.0.5", "targetPort": 2222 })),
    ]);
    assert_eq!(
        fleet_problems(&fleet),
        vec![
            Problem::error(
                "b",
                "hostname",
                "hostname \"BOX\" is also the hostname of `a`; give each machine its own networking.hostName"
            ),
            Problem::error(
                "d",
                "targetHost",
                "`c` is reached at the same address, 10.0.0.5:22, so lab would run both machines' steps on one host; set lab.machine.targetHost (or targetPort) to this machine's own address"
            ),
        ]
    );
}

#[test]
fn order_puts_dependencies_first_then_reboot_order_then_name() {
    let fleet = Fleet::new(vec![
        machine("web", &["db", "dns"], 1, json!({})),
        machine("db", &["dns"], 9, json!({})),
        machine("dns", &[], 5, json!({})),
        machine("zeta", &[], 2, json!({})),
        machine("alpha", &[], 2, json!({})),
    ])
    .unwrap();
    assert_eq!(names(&fleet.order()), ["alpha", "zeta", "dns", "db", "web"]);
}

#[test]
fn one_machine_per_wave_by_default_is_the_order() {
    let fleet = Fleet::new(vec![plain("a", &[]), plain("b", &["a"]), plain("c", &[])]).unwrap();
    let waves: Vec<String> = fleet.waves(&Limits::default()).into_iter().flatten().map(|m| m.name.clone()).collect();
    assert_eq!(waves, names(&fleet.order()));
    assert_eq!(fleet.waves(&Limits::default()).len(), 3);
}

#[test]
fn a_machine_waits_for_the_wave_after_its_dependencies() {
    let fleet = Fleet::new(vec![plain("a", &[]), plain("b", &["a"]), plain("c", &[]), plain("d", &[])]).unwrap();
    assert_eq!(wave_names(&fleet, &limits(2, None)), [vec!["a", "c"], vec!["b", "d"]]);
    assert_eq!(wave_names(&fleet, &limits(10, None)), [vec!["a", "c", "d"], vec!["b"]]);
}

#[test]
fn a_critical_machine_is_alone() {
    let fleet =
        Fleet::new(vec![grouped("a", "low", &[]), grouped("b", "critical", &[]), grouped("c", "low", &[])]).unwrap();
    assert_eq!(wave_names(&fleet, &limits(10, None)), [vec!["a", "c"], vec!["b"]]);
}

#[test]
fn a_high_machine_shares_no_wave_with_its_groups() {
    let fleet = Fleet::new(vec![
        grouped("dns1", "high", &["dns"]),
        grouped("dns2", "high", &["dns"]),
        grouped("cache", "low", &["dns"]),
        grouped("web", "medium", &["web"]),
    ])
    .unwrap();
    assert_eq!(wave_names(&fleet, &limits(10, None)), [vec!["cache", "web"], vec!["dns1"], vec!["dns2"]]);
}

#[test]
fn max_unavailable_per_group_bounds_every_group() {
    let fleet = Fleet::new(vec![
        grouped("a", "low", &["g"]),
        grouped("b", "medium", &["g"]),
        grouped("c", "low", &["g", "h"]),
        grouped("d", "low", &["h"]),
    ])
    .unwrap();
    assert_eq!(wave_names(&fleet, &limits(10, Some(2))), [vec!["a", "b", "d"], vec!["c"]]);
    assert_eq!(wave_names(&fleet, &limits(10, None)), [vec!["a", "b", "c", "d"]]);
}

#[test]
fn a_deploy_takes_every_ready_recreate_machine_at_once() {
    let recreate = |name: &str, deps: &[&str], extra: serde_json::Value| {
        let mut orchestration = json!({ "deployStrategy": "recreate" });
        if let (Some(o), Some(e)) = (orchestration.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        machine(name, deps, 1, json!({ "orchestration": orchestration }))
    };
    let fleet = Fleet::new(vec![
        plain("a-rolling", &[]),
        plain("b-rolling", &[]),
        recreate("c1", &[], json!({})),
        recreate("c2", &[], json!({})),
        recreate("c3", &["a-rolling"], json!({})),
        recreate("c4", &[], json!({ "criticalityLevel": "critical" })),
    ])
    .unwrap();
    let deploy = |l: &Limits| -> Vec<Vec<String>> { fleet.deploy_waves(l).iter().map(|w| names(w)).collect() };
    // maxParallel 1 bounds the rolling machines; the recreate ones that are
    // ready go along; a critical one stays alone; c3 waits for a-rolling.
    assert_eq!(deploy(&Limits::default()), [vec!["a-rolling", "c1", "c2"], vec!["b-rolling", "c3"], vec!["c4"]]);
    // A reboot counts every machine: one per wave.
    assert_eq!(wave_names(&fleet, &Limits::default()).len(), 6);
}

fn selection_fleet() -> Fleet {
    Fleet::new(vec![
        machine("router", &[], 1, json!({ "role": "router" })),
        machine("dns1", &["router"], 1, json!({ "groups": ["dns"] })),
        machine("dns2", &["router"], 1, json!({ "groups": ["dns"] })),
        machine("web-1", &["dns1"], 1, json!({ "role": "web-server" })),
        machine("web-2", &["dns2"], 1, json!({ "role": "web-server" })),
    ])
    .unwrap()
}

fn select(expression: &str, expand: Expand) -> Result<Vec<String>, SelectError> {
    let selector: Selector = expression.parse()?;
    let part = selection_fleet().select(&selector, expand)?;
    Ok(part.machines().iter().map(|m| m.name.clone()).collect())
}

#[test]
fn selection_by_name_group_role_and_glob() {
    let none = Expand::default();
    assert_eq!(select("router", none).unwrap(), ["router"]);
    assert_eq!(select("@dns", none).unwrap(), ["dns1", "dns2"]);
    assert_eq!(select("role:web-*", none).unwrap(), ["web-1", "web-2"]);
    assert_eq!(select("web-?, router", none).unwrap(), ["router", "web-1", "web-2"]);
    assert_eq!(select("@d*", none).unwrap(), ["dns1", "dns2"]);
}

#[test]
fn selection_grows_with_dependencies_and_dependents() {
    let deps = Expand { dependencies: true, dependents: false };
    let dependents = Expand { dependencies: false, dependents: true };
    assert_eq!(select("web-1", deps).unwrap(), ["dns1", "router", "web-1"]);
    assert_eq!(select("dns1", dependents).unwrap(), ["dns1", "web-1"]);
    let both = Expand { dependencies: true, dependents: true };
    assert_eq!(select("dns1", both).unwrap(), ["dns1", "router", "web-1"]);
    // Machines left out order the selection only through the paths they
    // are on: web-1 and web-2 reach neither each other, so they share a wave.
    let part = selection_fleet().select(&"web-*".parse().unwrap(), Expand::default()).unwrap();
    assert_eq!(part.waves(&limits(5, None)).len(), 1);
}

#[test]
fn a_term_selecting_nothing_is_an_error_naming_it() {
    let none = Expand::default();
    assert_eq!(
        select("router,dsn1", none).unwrap_err().to_string(),
        "--on \"router,dsn1\": `dsn1` selects no machine (did you mean `dns1`?)"
    );
    assert_eq!(
        select("@dsn", none).unwrap_err().to_string(),
        "--on \"@dsn\": `@dsn` selects no machine (did you mean `@dns`?)"
    );
    assert_eq!(
        select("role:database", none).unwrap_err().to_string(),
        "--on \"role:database\": `role:database` selects no machine (the fleet's roles: router, server, web-server)"
    );
    assert_eq!(
        select("a,,b", none).unwrap_err().to_string(),
        "--on \"a,,b\": term 2 is empty; give machine names, @group or role:NAME, separated by commas"
    );
    assert!(matches!(select("@", none), Err(SelectError::Empty { .. })));
}

#[test]
fn a_component_with_many_cycles_is_cut_short_with_a_summary() {
    // `a` and each of b..m depend on each other: twelve 2-cycles through `a`.
    let spokes: Vec<String> = ('b'..='m').map(String::from).collect();
    let mut machines = vec![plain("a", &spokes.iter().map(String::as_str).collect::<Vec<_>>())];
    machines.extend(spokes.iter().map(|s| plain(s, &["a"])));
    let problems = errors(machines);
    assert_eq!(problems.len(), 11);
    assert_eq!(problems[1].message.split(';').next(), Some("dependency cycle c -> a -> c"));
    assert_eq!(
        problems[10],
        Problem::error(
            "l",
            "dependencies",
            "2 more machines are on the dependency cycles above (l, m); fix those cycles, then run `lab check` again"
        )
    );
}

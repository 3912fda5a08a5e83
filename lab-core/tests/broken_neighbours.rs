//! A broken machine blocks only what needs it (`graph::usable`,
//! `graph::reachable`): the selection, everything it depends on, and with
//! `--with-dependents` whatever may depend on it; the rest is named as left
//! alone. Evaluations are built directly, with failures and problems.

use std::collections::BTreeMap;

use lab_core::eval::{Evaluation, HostFailure};
use lab_core::graph::{reachable, usable, Expand, Need, OrderError, Purpose, Usable};
use lab_core::metadata::{parse_machine, Machine};
use serde_json::json;

fn machine(name: &str, extra: serde_json::Value) -> (String, Machine) {
    let mut value = json!({ "role": "server", "rebootOrder": 0, "targetHost": format!("{name}.lan") });
    for (k, v) in extra.as_object().unwrap() {
        value[k] = v.clone();
    }
    (name.to_string(), parse_machine(name, value, None).unwrap())
}

/// `a` fails to evaluate; `b` is sound and alone; `c` needs `a`; `d` needs
/// `b`; `e` has a bad targetHost; `f` needs `e`; `g` needs `f` (so `e`
/// transitively); `x -> y -> x` is a cycle and `w` needs `x`.
fn fleet() -> Evaluation {
    let machines: BTreeMap<String, Machine> = [
        machine("b", json!({})),
        machine("c", json!({ "dependencies": ["a"] })),
        machine("d", json!({ "dependencies": ["b"], "rebootOrder": 1 })),
        machine("e", json!({ "targetHost": "-oProxyCommand=x" })),
        machine("f", json!({ "dependencies": ["e"] })),
        machine("g", json!({ "dependencies": ["f"] })),
        machine("x", json!({ "dependencies": ["y"] })),
        machine("y", json!({ "dependencies": ["x"] })),
        machine("w", json!({ "dependencies": ["x"] })),
    ]
    .into_iter()
    .collect();
    let failures = vec![HostFailure {
        machine: "a".into(),
        message: "error: a is broken".into(),
        location: Some("a.nix:3".into()),
    }];
    Evaluation { machines, failures, ..Evaluation::default() }
}

fn names(usable: &Usable) -> Vec<&str> {
    usable.fleet.machines().iter().map(|m| m.name.as_str()).collect()
}

fn blocking(result: Result<Usable, OrderError>) -> Vec<(String, Need)> {
    match result {
        Err(OrderError::Blocked(blocked)) => {
            blocked.blocking.into_iter().map(|b| (b.broken.machine, b.needed)).collect()
        }
        Err(other) => panic!("expected Blocked, got {other}"),
        Ok(u) => panic!("expected Blocked, got {:?}", names(&u)),
    }
}

#[test]
fn an_unrelated_selection_is_usable_and_names_the_broken_as_left_alone() {
    let eval = fleet();
    let used = usable(&eval, Some("b,d"), Expand::default(), Purpose::Run).unwrap();
    assert_eq!(names(&used), ["b", "d"]);
    assert_eq!(
        used.fleet.sequence(&Default::default()).iter().map(|e| e.machine.as_str()).collect::<Vec<_>>(),
        ["b", "d"]
    );
    let outside: Vec<&str> = used.outside.iter().map(|b| b.machine.as_str()).collect();
    assert_eq!(outside, ["a", "e", "x", "y"]);
    assert_eq!(used.outside[0].reason(), "failed to evaluate");
    assert!(used.outside[1].reason().starts_with("targetHost: "), "{}", used.outside[1].reason());
    assert!(used.outside[2].reason().starts_with("dependencies[0]: dependency cycle x -> y -> x"));
    assert_eq!(used.outside[3].reason(), "on a dependency cycle with `x`");
    // --with-dependencies reaches only sound machines.
    assert_eq!(
        names(&usable(&eval, Some("d"), Expand { dependencies: true, dependents: false }, Purpose::Run).unwrap()),
        ["b", "d"]
    );
}

#[test]
fn a_broken_dependency_blocks_also_through_machines_left_out() {
    let eval = fleet();
    assert_eq!(
        blocking(usable(&eval, Some("c"), Expand::default(), Purpose::Run)),
        [("a".into(), Need::DependencyOf("c".into()))]
    );
    assert_eq!(
        blocking(usable(&eval, Some("g"), Expand::default(), Purpose::Run)),
        [("e".into(), Need::DependencyOf("g".into()))]
    );
    assert_eq!(
        blocking(usable(&eval, Some("w"), Expand::default(), Purpose::Run)),
        [("x".into(), Need::DependencyOf("w".into())), ("y".into(), Need::DependencyOf("w".into()))]
    );
    assert_eq!(blocking(usable(&eval, Some("e,b"), Expand::default(), Purpose::Run)), [("e".into(), Need::Selected)]);
    // A name selects a machine that failed to evaluate: it blocks, rather
    // than "selects no machine".
    assert_eq!(blocking(usable(&eval, Some("a"), Expand::default(), Purpose::Run)), [("a".into(), Need::Selected)]);
}

#[test]
fn dependents_are_unknown_through_a_machine_that_failed_to_evaluate() {
    let eval = fleet();
    // `a`'s dependencies are unknown: it may depend on `b`.
    let with_dependents = Expand { dependencies: false, dependents: true };
    let blocked = blocking(usable(&eval, Some("b"), with_dependents, Purpose::Run));
    assert_eq!(blocked, [("a".into(), Need::MayDependOnSelection)]);
    // Known broken dependents are selected by --with-dependents.
    let mut sound = fleet();
    sound.failures.clear();
    sound.machines.remove("c");
    assert_eq!(names(&usable(&sound, Some("b"), with_dependents, Purpose::Run).unwrap()), ["b", "d"]);
    assert_eq!(
        blocking(usable(&sound, Some("f"), with_dependents, Purpose::Run)),
        [("e".into(), Need::DependencyOf("f".into()))]
    );
}

#[test]
fn the_whole_fleet_is_blocked_by_every_broken_machine() {
    let eval = fleet();
    let blocked: Vec<String> =
        blocking(usable(&eval, None, Expand::default(), Purpose::Run)).into_iter().map(|(m, _)| m).collect();
    assert_eq!(blocked, ["a", "e", "x", "y"]);
    let Err(OrderError::Blocked(b)) = usable(&eval, None, Expand::default(), Purpose::Run) else { panic!() };
    let text = b.to_string();
    assert!(text.contains("error: machine `a`: failed to evaluate (a.nix:3): error: a is broken"), "{text}");
    assert!(text.contains("dependency cycle"), "{text}");
    assert!(text.contains("machine `e`: targetHost"), "{text}");
}

#[test]
fn reading_the_order_needs_only_sound_dependencies() {
    let eval = fleet();
    // `e`'s bad targetHost does not change the order: `g` can be ordered,
    // and `e` is no warning for a read.
    let read = usable(&eval, Some("g"), Expand::default(), Purpose::Order).unwrap();
    assert_eq!(names(&read), ["g"]);
    assert_eq!(read.outside.iter().map(|b| b.machine.as_str()).collect::<Vec<_>>(), ["a", "x", "y"]);
    // A failure, a cycle and an unknown dependency still block it.
    assert_eq!(
        blocking(usable(&eval, Some("c"), Expand::default(), Purpose::Order)),
        [("a".into(), Need::DependencyOf("c".into()))]
    );
    assert_eq!(blocking(usable(&eval, Some("w"), Expand::default(), Purpose::Order)).len(), 2);
    let mut ghost = fleet();
    ghost.failures.clear();
    ghost.machines.insert(
        machine("h", json!({ "dependencies": ["ghost"] })).0,
        machine("h", json!({ "dependencies": ["ghost"] })).1,
    );
    let Err(OrderError::Blocked(blocked)) = usable(&ghost, Some("h"), Expand::default(), Purpose::Order) else {
        panic!()
    };
    assert_eq!(blocked.details(), ["error: machine `h`: dependencies[0]: no machine is called `ghost` (did you mean `g`?); fix the name or remove it from lab.machine.dependencies"]);
}

#[test]
fn the_order_of_a_selection_is_kept_beside_broken_machines() {
    // c -> b -> a with rebootOrder against the dependencies; z is broken.
    let machines = [
        machine("a", json!({ "rebootOrder": 3 })),
        machine("b", json!({ "rebootOrder": 2, "dependencies": ["a"] })),
        machine("c", json!({ "rebootOrder": 1, "dependencies": ["b"] })),
        machine("z", json!({ "role": "" })),
    ];
    let eval = Evaluation { machines: machines.into_iter().collect(), ..Evaluation::default() };
    let used = usable(&eval, Some("a,c"), Expand::default(), Purpose::Run).unwrap();
    let order: Vec<String> = used.fleet.sequence(&Default::default()).into_iter().map(|e| e.machine).collect();
    assert_eq!(order, ["a", "c"]);
    assert_eq!(used.outside.iter().map(|b| b.machine.as_str()).collect::<Vec<_>>(), ["z"]);
}

#[test]
fn reaching_machines_ignores_the_graph_and_blocks_only_on_a_selected_failure() {
    let eval = fleet();
    let reached = reachable(&eval, Some("w,x,e")).unwrap();
    let names: Vec<&str> = reached.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["e", "w", "x"]);
    // Machines keep their dependencies as evaluated.
    assert_eq!(reached.machines[1].metadata.dependencies, ["x"]);
    assert_eq!(reached.outside.iter().map(|b| b.machine.as_str()).collect::<Vec<_>>(), ["a"]);
    assert!(matches!(reachable(&eval, Some("a,b")), Err(OrderError::Blocked(_))));
    let all = reachable(&eval, None).unwrap();
    assert_eq!(all.machines.len(), 9);
    assert_eq!(all.outside.len(), 1);
    assert!(matches!(reachable(&eval, Some("nope")), Err(OrderError::Select(_))));
}

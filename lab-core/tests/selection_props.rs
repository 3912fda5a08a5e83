//! A selection (`--on`) keeps the whole fleet's order: a selected machine
//! never comes before, nor shares a wave with, a selected machine it
//! reaches through any path of the whole fleet, also through machines the
//! selection leaves out.
//!
//! Reachability is computed here from the machines' `dependencies` lists,
//! independently of lab-core's graph, so the oracle cannot share its bugs.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;

use lab_core::graph::{Expand, Fleet, Limits, Selector};
use lab_core::metadata::{Criticality, DeployStrategy, Machine, MachineMetadata, Orchestration};
use proptest::prelude::*;

use lab_testkit::rng::Rng;

fn machine(name: &str, dependencies: &[&str], reboot_order: i64) -> Machine {
    Machine {
        hostname: Some(name.to_string()),
        services: Vec::new(),
        metadata: MachineMetadata {
            dependencies: dependencies.iter().map(|d| d.to_string()).collect(),
            groups: Vec::new(),
            health_checks: Vec::new(),
            orchestration: Orchestration::default(),
            reboot_order,
            role: "server".into(),
            target_host: None,
            target_port: 22,
            target_user: "root".into(),
        },
        name: name.to_string(),
    }
}

/// A random DAG of `n` machines. Machine `m{i}` depends on up to `max_deps`
/// machines of lower index; rebootOrder is drawn so that it often
/// contradicts the dependencies (a machine that needs another may well have
/// the lower rebootOrder), which is what makes a lost path visible.
fn random_dag(n: usize, max_deps: usize, seed: u64) -> Vec<Machine> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let mut deps: BTreeSet<String> = BTreeSet::new();
            if i > 0 {
                for _ in 0..rng.below(max_deps + 1) {
                    deps.insert(format!("m{}", rng.below(i)));
                }
            }
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            let mut m = machine(&format!("m{i}"), &deps, rng.below(4) as i64);
            m.metadata.groups = (0..rng.below(3)).map(|_| format!("g{}", rng.below(n / 6 + 1))).collect();
            m.metadata.orchestration.criticality_level = match rng.below(12) {
                0 => Criticality::Critical,
                1..=2 => Criticality::High,
                3..=7 => Criticality::Medium,
                _ => Criticality::Low,
            };
            m.metadata.orchestration.deploy_strategy =
                [DeployStrategy::Rolling, DeployStrategy::BlueGreen, DeployStrategy::Recreate][rng.below(3)];
            m
        })
        .collect()
}

/// For each machine, every machine it reaches along dependencies (not itself).
fn reaches(machines: &[Machine]) -> HashMap<String, BTreeSet<String>> {
    let deps: HashMap<&str, &[String]> =
        machines.iter().map(|m| (m.name.as_str(), m.metadata.dependencies.as_slice())).collect();
    machines
        .iter()
        .map(|m| {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<&str> = deps[m.name.as_str()].iter().map(String::as_str).collect();
            while let Some(d) = stack.pop() {
                if seen.insert(d.to_string()) {
                    stack.extend(deps[d].iter().map(String::as_str));
                }
            }
            (m.name.clone(), seen)
        })
        .collect()
}

fn names<'a>(machines: impl IntoIterator<Item = &'a Machine>) -> Vec<String> {
    machines.into_iter().map(|m| m.name.clone()).collect()
}

/// Every selected machine comes after every selected machine it reaches.
fn assert_respects(reach: &HashMap<String, BTreeSet<String>>, position: &HashMap<String, usize>, what: &str) {
    for (name, &at) in position {
        for dep in &reach[name] {
            if let Some(&dep_at) = position.get(dep) {
                assert!(dep_at < at, "{what}: {name} (at {at}) reaches {dep} (at {dep_at}) but is not after it");
            }
        }
    }
}

fn wave_positions(waves: &[Vec<&Machine>]) -> HashMap<String, usize> {
    waves.iter().enumerate().flat_map(|(w, wave)| wave.iter().map(move |m| (m.name.clone(), w))).collect()
}

fn select(fleet: &Fleet, names: &[&str], expand: Expand) -> Fleet {
    let selector: Selector = names.join(",").parse().expect("a list of names parses");
    fleet.select(&selector, expand).expect("every name is in the fleet")
}

#[test]
fn the_chain_of_issue_16_keeps_its_order() {
    // c depends on b, b on a; rebootOrder a=3, b=2, c=1.
    let fleet = Fleet::new(vec![machine("a", &[], 3), machine("b", &["a"], 2), machine("c", &["b"], 1)]).unwrap();
    let part = select(&fleet, &["a", "c"], Expand::default());
    assert_eq!(names(part.order()), ["a", "c"]);
    let two = Limits { max_parallel: NonZeroUsize::new(2).unwrap(), max_unavailable_per_group: None };
    let waves: Vec<Vec<String>> = part.waves(&two).into_iter().map(names).collect();
    assert_eq!(waves, [vec!["a"], vec!["c"]]);
    let waves: Vec<Vec<String>> = part.deploy_waves(&two).into_iter().map(names).collect();
    assert_eq!(waves, [vec!["a"], vec!["c"]]);
    // The implied dependency is what the run waits on.
    assert_eq!(names(part.dependencies("c")), ["a"]);
}

#[test]
fn paths_through_several_left_out_machines_and_branches_count() {
    // x needs p and q (both left out); p needs y, q needs z; z needs w.
    let fleet = Fleet::new(vec![
        machine("p", &["y"], 0),
        machine("q", &["z"], 0),
        machine("w", &[], 9),
        machine("x", &["p", "q"], 0),
        machine("y", &[], 9),
        machine("z", &["w"], 0),
    ])
    .unwrap();
    let part = select(&fleet, &["w", "x", "y"], Expand::default());
    assert_eq!(names(part.order()), ["w", "y", "x"]);
    assert_eq!(names(part.dependencies("x")), ["w", "y"]);
    // w and y reach neither each other: they may share a wave.
    let three = Limits { max_parallel: NonZeroUsize::new(3).unwrap(), max_unavailable_per_group: None };
    let waves: Vec<Vec<String>> = part.waves(&three).into_iter().map(names).collect();
    assert_eq!(waves, [vec!["w", "y"], vec!["x"]]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_selection_never_puts_a_machine_before_what_it_reaches(
        n in 2usize..=120,
        max_deps in 0usize..=3,
        seed in any::<u64>(),
        pick_per_mille in 50u64..=700,
        max_parallel in 1usize..=6,
        per_group in proptest::option::of(1usize..=3),
        with_dependencies in any::<bool>(),
        with_dependents in any::<bool>(),
    ) {
        let machines = random_dag(n, max_deps, seed);
        let reach = reaches(&machines);
        let fleet = Fleet::new(machines.clone()).expect("a DAG builds");

        let mut rng = Rng(seed ^ 0x5e1e_c7ed);
        let mut picked: Vec<&str> = machines
            .iter()
            .filter(|_| (rng.below(1000) as u64) < pick_per_mille)
            .map(|m| m.name.as_str())
            .collect();
        if picked.is_empty() {
            picked.push(machines[rng.below(n)].name.as_str());
        }
        let expand = Expand { dependencies: with_dependencies, dependents: with_dependents };
        let part = select(&fleet, &picked, expand);

        // The selection itself: what was picked, grown as asked, nothing else.
        let picked_set: BTreeSet<&str> = picked.iter().copied().collect();
        let expected: BTreeSet<String> = machines
            .iter()
            .filter(|m| {
                picked_set.contains(m.name.as_str())
                    || (with_dependencies && picked_set.iter().any(|p| reach[*p].contains(&m.name)))
                    || (with_dependents && reach[&m.name].iter().any(|d| picked_set.contains(d.as_str())))
            })
            .map(|m| m.name.clone())
            .collect();
        let got: BTreeSet<String> = names(part.machines()).into_iter().collect();
        prop_assert_eq!(&got, &expected);

        let order: HashMap<String, usize> =
            part.order().into_iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
        prop_assert_eq!(order.len(), got.len());
        assert_respects(&reach, &order, "order");

        let limits = Limits {
            max_parallel: NonZeroUsize::new(max_parallel).unwrap(),
            max_unavailable_per_group: per_group.and_then(NonZeroUsize::new),
        };
        let waves = wave_positions(&part.waves(&limits));
        prop_assert_eq!(waves.len(), got.len());
        assert_respects(&reach, &waves, "waves");
        let deploy = wave_positions(&part.deploy_waves(&limits));
        prop_assert_eq!(deploy.len(), got.len());
        assert_respects(&reach, &deploy, "deploy waves");

        // Every machine a selected machine waits on is one it truly reaches.
        for name in &got {
            for dep in part.dependencies(name) {
                prop_assert!(reach[name].contains(&dep.name), "{} waits on {} it does not reach", name, dep.name);
            }
        }
    }
}

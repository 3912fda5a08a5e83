//! Properties of order, waves and cycle reports on random fleets.
//!
//! Fleets are generated from a seed (not shrunk element by element) so a
//! 2,000-machine case stays cheap; a failure prints the seed and size.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;

use lab_core::graph::{dependency_cycles, fleet_problems, Fleet, Limits};
use lab_core::metadata::{Criticality, DeployStrategy, Machine, MachineMetadata, Orchestration};
use proptest::prelude::*;

use lab_testkit::rng::Rng;

fn machine(name: String, dependencies: Vec<String>, rng: &mut Rng, groups: usize) -> Machine {
    let criticality = match rng.below(20) {
        0 => Criticality::Critical,
        1..=3 => Criticality::High,
        4..=11 => Criticality::Medium,
        _ => Criticality::Low,
    };
    let groups = (0..rng.below(3)).map(|_| format!("g{}", rng.below(groups))).collect();
    Machine {
        hostname: Some(name.clone()),
        services: Vec::new(),
        metadata: MachineMetadata {
            dependencies,
            groups,
            health_checks: Vec::new(),
            orchestration: Orchestration {
                criticality_level: criticality,
                deploy_strategy: [DeployStrategy::Rolling, DeployStrategy::BlueGreen, DeployStrategy::Recreate]
                    [rng.below(3)],
                ..Orchestration::default()
            },
            reboot_order: rng.below(4) as i64,
            role: "server".into(),
            target_host: None,
            target_port: 22,
            target_user: "root".into(),
        },
        name,
    }
}

/// A random DAG of `n` machines: machine of rank i depends on up to
/// `max_deps` machines of lower rank; names are a shuffle of the ranks so
/// name order says nothing about the graph.
fn random_dag(n: usize, max_deps: usize, seed: u64) -> Vec<Machine> {
    let mut rng = Rng(seed);
    let mut names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    rng.shuffle(&mut names);
    let groups = n / 8 + 1;
    (0..n)
        .map(|i| {
            let deps = if i == 0 {
                Vec::new()
            } else {
                (0..rng.below(max_deps + 1)).map(|_| names[rng.below(i)].clone()).collect()
            };
            machine(names[i].clone(), dedup(deps), &mut rng, groups)
        })
        .collect()
}

/// A random digraph of `n` machines, edges in any direction (usually cyclic).
fn random_digraph(n: usize, edges: usize, seed: u64) -> BTreeMap<String, Machine> {
    let mut rng = Rng(seed);
    let mut deps: Vec<Vec<String>> = vec![Vec::new(); n];
    for _ in 0..edges {
        let (a, b) = (rng.below(n), rng.below(n));
        if a != b {
            deps[a].push(format!("m{b}"));
        }
    }
    deps.into_iter()
        .enumerate()
        .map(|(i, d)| (format!("m{i}"), machine(format!("m{i}"), dedup(d), &mut rng, 4)))
        .collect()
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

fn names<'a>(machines: impl IntoIterator<Item = &'a Machine>) -> Vec<String> {
    machines.into_iter().map(|m| m.name.clone()).collect()
}

fn limits(max_parallel: usize, per_group: Option<usize>) -> Limits {
    Limits {
        max_parallel: NonZeroUsize::new(max_parallel).unwrap(),
        max_unavailable_per_group: per_group.and_then(NonZeroUsize::new),
    }
}

/// `order` is topological, and each machine was taken only when it was the
/// most urgent (lowest rebootOrder, then name) of the machines ready then:
/// every machine taken between the moment `m` became ready and `m` itself
/// has a lower key than `m`.
fn check_order(machines: &[Machine], order: &[String]) {
    let by_name: HashMap<&str, &Machine> = machines.iter().map(|m| (m.name.as_str(), m)).collect();
    let pos: HashMap<&str, usize> = order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    assert_eq!(pos.len(), machines.len(), "order holds every machine once");
    for m in machines {
        let at = pos[m.name.as_str()];
        let deps: Vec<usize> = m.metadata.dependencies.iter().map(|d| pos[d.as_str()]).collect();
        assert!(deps.iter().all(|&d| d < at), "{} comes before a dependency", m.name);
        let ready = deps.iter().map(|&d| d + 1).max().unwrap_or(0);
        let urgency = (m.metadata.reboot_order, m.name.as_str());
        for taken in &order[ready..at] {
            let taken = (by_name[taken.as_str()].metadata.reboot_order, taken.as_str());
            assert!(taken < urgency, "{} was taken while the more urgent {} was ready", taken.1, m.name);
        }
    }
}

/// The wave rules; only machines for which `counts` holds count towards
/// maxParallel (all for reboots; all but recreate machines for deploys).
fn check_waves(machines: &[Machine], waves: &[Vec<String>], limits: &Limits, counts: impl Fn(&Machine) -> bool) {
    let by_name: HashMap<&str, &Machine> = machines.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut wave_of: HashMap<&str, usize> = HashMap::new();
    for (w, wave) in waves.iter().enumerate() {
        assert!(!wave.is_empty(), "wave {w} is empty");
        let counted = wave.iter().filter(|n| counts(by_name[n.as_str()])).count();
        assert!(counted <= limits.max_parallel.get(), "wave {w} is over maxParallel");
        let mut per_group: HashMap<&str, usize> = HashMap::new();
        for name in wave {
            assert!(wave_of.insert(name, w).is_none(), "{name} is in two waves");
            let m = by_name[name.as_str()];
            let groups: BTreeSet<&str> = m.metadata.groups.iter().map(String::as_str).collect();
            for g in &groups {
                *per_group.entry(g).or_default() += 1;
            }
            match m.metadata.orchestration.criticality_level {
                Criticality::Critical => assert_eq!(wave.len(), 1, "critical {name} shares wave {w}"),
                Criticality::High => {
                    for other in wave.iter().filter(|o| *o != name) {
                        let shared =
                            by_name[other.as_str()].metadata.groups.iter().any(|g| groups.contains(g.as_str()));
                        assert!(!shared, "high {name} shares a group with {other} in wave {w}");
                    }
                }
                _ => {}
            }
        }
        if let Some(limit) = limits.max_unavailable_per_group {
            assert!(per_group.values().all(|&c| c <= limit.get()), "wave {w} is over maxUnavailablePerGroup");
        }
    }
    assert_eq!(wave_of.len(), machines.len(), "every machine is in a wave");
    for m in machines {
        for d in &m.metadata.dependencies {
            assert!(wave_of[d.as_str()] < wave_of[m.name.as_str()], "{} is not after its dependency {d}", m.name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn order_and_waves_of_random_dags(
        n in 1usize..=2000,
        max_deps in 0usize..=4,
        seed in any::<u64>(),
        max_parallel in 1usize..=8,
        per_group in proptest::option::of(1usize..=3),
    ) {
        let machines = random_dag(n, max_deps, seed);
        let fleet = Fleet::new(machines.clone()).expect("a DAG builds");
        let order = names(fleet.order());
        check_order(&machines, &order);

        let limits = limits(max_parallel, per_group);
        let waves: Vec<Vec<String>> = fleet.waves(&limits).into_iter().map(names).collect();
        check_waves(&machines, &waves, &limits, |_| true);
        let deploy: Vec<Vec<String>> = fleet.deploy_waves(&limits).into_iter().map(names).collect();
        check_waves(&machines, &deploy, &limits, |m| m.metadata.orchestration.deploy_strategy != DeployStrategy::Recreate);
        let one_by_one: Vec<String> = fleet.waves(&Limits::default()).into_iter().flat_map(names).collect();
        prop_assert_eq!(&one_by_one, &order);

        // Whatever order the machines come in, the result is the same.
        let mut shuffled = machines;
        Rng(seed ^ 0xDEAD_BEEF).shuffle(&mut shuffled);
        let again = Fleet::new(shuffled).expect("a DAG builds");
        prop_assert_eq!(names(again.order()), order);
        let waves_again: Vec<Vec<String>> = again.waves(&limits).into_iter().map(names).collect();
        prop_assert_eq!(waves_again, waves);
    }

    #[test]
    fn every_reported_cycle_is_real(n in 2usize..=300, density in 1usize..=3, seed in any::<u64>()) {
        let machines = random_digraph(n, n * density / 2 + 1, seed);
        let cycles = dependency_cycles(&machines);
        for cycle in &cycles {
            prop_assert!(cycle.len() >= 3, "a cycle has at least two machines: {:?}", cycle);
            prop_assert_eq!(cycle.first(), cycle.last());
            let inner: BTreeSet<&String> = cycle[1..].iter().collect();
            prop_assert_eq!(inner.len(), cycle.len() - 1, "a cycle visits a machine once: {:?}", cycle);
            for pair in cycle.windows(2) {
                prop_assert!(machines[&pair[0]].metadata.dependencies.contains(&pair[1]), "no edge {} -> {}", pair[0], pair[1]);
            }
        }
        // A cycle is reported exactly when there is one, and the fleet then does not build.
        let cyclic = Fleet::from_map(&machines).is_err();
        prop_assert_eq!(cyclic, !cycles.is_empty());
        let reported = fleet_problems(&machines).iter().filter(|p| p.message.starts_with("dependency cycle ")).count();
        prop_assert_eq!(reported, cycles.len());
        prop_assert_eq!(cyclic, has_cycle(&machines));
    }
}

/// Independent cycle test: Kahn's algorithm leaves machines over.
fn has_cycle(machines: &BTreeMap<String, Machine>) -> bool {
    let mut pending: HashMap<&str, usize> =
        machines.values().map(|m| (m.name.as_str(), m.metadata.dependencies.len())).collect();
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in machines.values() {
        for d in &m.metadata.dependencies {
            dependents.entry(d).or_default().push(&m.name);
        }
    }
    let mut ready: Vec<&str> = pending.iter().filter(|(_, &c)| c == 0).map(|(n, _)| *n).collect();
    let mut done = 0;
    while let Some(m) = ready.pop() {
        done += 1;
        for d in dependents.get(m).into_iter().flatten() {
            let c = pending.get_mut(d).unwrap();
            *c -= 1;
            if *c == 0 {
                ready.push(d);
            }
        }
    }
    done < machines.len()
}

//! A plan's header states the limits its waves really hold to: recreate
//! machines do not count towards max parallel in deploy waves, and the
//! header says so whenever the plan has some.

use std::path::Path;

use lab_core::graph::{Fleet, Limits};
use lab_core::metadata::{parse_fleet_json, DeployStrategy};
use lab_core::plan::{Plan, PlanKind};

fn example() -> Fleet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleets/example.json");
    let machines = parse_fleet_json(&std::fs::read_to_string(&path).unwrap(), Some(&path)).unwrap();
    Fleet::from_map(&machines).unwrap()
}

#[test]
fn a_deploy_plan_says_recreate_machines_do_not_count_towards_max_parallel() {
    let fleet = example();
    let plan = Plan::new(PlanKind::Deploy, &fleet, &Limits::default());
    let recreate = plan.machines().filter(|(_, m)| m.deploy_strategy == DeployStrategy::Recreate).count();
    assert!(recreate >= 2, "the example fleet has recreate machines");
    assert_eq!(plan.uncounted_machines(), recreate);
    let header = plan.render_text().lines().next().unwrap().to_string();
    assert!(
        header.ends_with(&format!("(max parallel 1, recreate machines not counted ({recreate} here))")),
        "{header}"
    );
    // What the header says is what the waves do: at most max parallel
    // machines that count, and some wave holds more machines than that.
    for wave in &plan.waves {
        let counted = wave.machines.iter().filter(|m| m.deploy_strategy != DeployStrategy::Recreate).count();
        assert!(counted <= 1, "wave {}: {counted} counted machines", wave.wave);
    }
    assert!(plan.waves.iter().any(|w| w.machines.len() > 1), "recreate machines share a wave with another");
}

#[test]
fn reboot_plans_and_deploys_without_recreate_machines_say_only_max_parallel() {
    let fleet = example();
    let limits = Limits { max_parallel: 2.try_into().unwrap(), max_unavailable_per_group: Some(1.try_into().unwrap()) };
    let reboot = Plan::new(PlanKind::Reboot, &fleet, &limits);
    assert_eq!(reboot.uncounted_machines(), 0);
    assert!(reboot.render_text().starts_with("Reboot plan: 7 machines in "), "{}", reboot.render_text());
    assert!(
        reboot.render_text().lines().next().unwrap().ends_with("(max parallel 2, at most 1 per group)"),
        "{}",
        reboot.render_text()
    );
    let rolling = fleet.select(&"dns1".parse().unwrap(), Default::default()).unwrap();
    let deploy = Plan::new(PlanKind::Deploy, &rolling, &limits);
    assert!(deploy.render_text().lines().next().unwrap().ends_with("(max parallel 2, at most 1 per group)"));
}

#[test]
fn the_header_names_the_recreate_machines_with_the_group_limit() {
    let plan = Plan::new(
        PlanKind::Deploy,
        &example(),
        &Limits { max_parallel: 1.try_into().unwrap(), max_unavailable_per_group: Some(1.try_into().unwrap()) },
    );
    let header = plan.render_text().lines().next().unwrap().to_string();
    assert!(header.contains("max parallel 1, recreate machines not counted ("), "{header}");
    assert!(header.ends_with("here), at most 1 per group)"), "{header}");
}

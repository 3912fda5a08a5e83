//! Plans of the example fleet: steps, estimates and totals.

use std::path::Path;

use lab_core::graph::{Fleet, Limits};
use lab_core::metadata::parse_fleet_json;
use lab_core::plan::{format_duration, target, Action, Plan, PlanKind, ESTIMATED_BOOT_SECONDS};

fn example() -> Fleet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleets/example.json");
    let machines = parse_fleet_json(&std::fs::read_to_string(&path).unwrap(), Some(&path)).unwrap();
    Fleet::from_map(&machines).unwrap()
}

#[test]
fn a_reboot_step_list_and_its_estimates() {
    let plan = Plan::new(PlanKind::Reboot, &example(), &Limits::default());
    let sleeper = plan.waves.iter().flat_map(|w| &w.machines).find(|m| m.machine == "sleeper-service").unwrap();
    let actions: Vec<Action> = sleeper.steps.iter().map(|s| s.action).collect();
    assert_eq!(actions, [Action::Wait, Action::Reboot, Action::WaitForBoot, Action::HealthChecks]);
    // rebootDelay 0, boot estimate, minHealthyTime 10 (checks pass at once).
    assert_eq!(sleeper.estimated_seconds, ESTIMATED_BOOT_SECONDS + 10);
    // rebootTimeout 600, healthyDeadline 300 + minHealthyTime 10.
    assert_eq!(sleeper.worst_case_seconds, 600 + 310);
    assert_eq!(sleeper.target, "root@sleeper-service:22");
}

#[test]
fn blue_green_deploys_commit_after_the_checks() {
    let plan = Plan::new(PlanKind::Deploy, &example(), &Limits::default());
    let dns1 = plan.waves.iter().flat_map(|w| &w.machines).find(|m| m.machine == "dns1").unwrap();
    let actions: Vec<Action> = dns1.steps.iter().map(|s| s.action).collect();
    assert_eq!(actions, [Action::Build, Action::Copy, Action::Activate, Action::HealthChecks, Action::Commit]);
}

#[test]
fn totals_are_the_sum_of_each_waves_slowest_machine() {
    let limits = Limits::parallel(3.try_into().unwrap());
    let plan = Plan::new(PlanKind::Reboot, &example(), &limits);
    for wave in &plan.waves {
        assert_eq!(wave.estimated_seconds, wave.machines.iter().map(|m| m.estimated_seconds).max().unwrap());
        assert_eq!(wave.worst_case_seconds, wave.machines.iter().map(|m| m.worst_case_seconds).max().unwrap());
    }
    assert_eq!(plan.estimated_seconds, plan.waves.iter().map(|w| w.estimated_seconds).sum::<u64>());
    assert_eq!(plan.worst_case_seconds, plan.waves.iter().map(|w| w.worst_case_seconds).sum::<u64>());
    assert_eq!(plan.machine_count(), 7);
    // JSON round trip, for the orchestrator and --dry-run.
    let json = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
}

#[test]
fn durations_and_targets_read_well() {
    assert_eq!(format_duration(0), "0s");
    assert_eq!(format_duration(59), "59s");
    assert_eq!(format_duration(125), "2m 05s");
    assert_eq!(format_duration(3723), "1h 02m 03s");
    let mut machine = example().machine("router").unwrap().clone();
    assert_eq!(target(&machine), "root@192.168.10.1:22");
    machine.metadata.target_host = Some("fd00::1".into());
    machine.metadata.target_port = 2222;
    assert_eq!(target(&machine), "root@[fd00::1]:2222");
}

//! What the simulation tests share: the simulated fleet ([`sim`]), test
//! fleets with short, exact timings, and the process's peak memory.

#![allow(dead_code)] // Each test binary uses part of it.

mod sim;

use lab_core::eval::Evaluation;
use lab_core::metadata::parse_machine;
use serde_json::{json, Value};
pub use sim::*;

/// One machine of a test fleet: name, dependencies, criticality, strategy.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    pub name: String,
    pub deps: Vec<String>,
    pub critical: bool,
    pub strategy: &'static str,
    pub reboot_order: i64,
}

/// Timings every simulated machine shares (seconds).
pub const REBOOT_DELAY: u64 = 5;
pub const MIN_HEALTHY: u64 = 2;

/// An evaluation of these machines with short, exact timings: one command
/// check every second, rebootDelay 5 s, minHealthyTime 2 s.
pub fn evaluation(machines: &[MachineSpec]) -> Evaluation {
    let machines = machines
        .iter()
        .map(|m| {
            let value: Value = json!({
                "role": "sim",
                "rebootOrder": m.reboot_order,
                "dependencies": m.deps,
                "orchestration": {
                    "rebootDelay": REBOOT_DELAY, "minHealthyTime": MIN_HEALTHY, "healthyDeadline": 30,
                    "rebootTimeout": 60, "confirmTimeout": 10,
                    "criticalityLevel": if m.critical { "critical" } else { "low" },
                    "deployStrategy": m.strategy,
                },
                "healthChecks": [{ "type": "command", "command": "true", "interval": 1 }],
            });
            (m.name.clone(), parse_machine(&m.name, value, None).unwrap())
        })
        .collect();
    Evaluation { machines, ..Evaluation::default() }
}

/// Peak resident memory of this process so far (VmHWM), in kB.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())
}

//! What a test asks for: hosts with their lab metadata and system knobs.

use std::path::PathBuf;
use std::time::Duration;

use lab_core::metadata::{Criticality, DeployStrategy, MachineMetadata};
use serde_json::json;

use crate::nixsys::SystemSpec;

/// What a host does when rebooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMode {
    /// Comes back after its boot delay.
    Normal,
    /// Goes down and never comes back.
    NeverReturns,
}

/// One test host.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// Its name (`nixosConfigurations.<name>`): lowercase letters, digits, `-`.
    pub name: String,
    /// Its `lab.machine`; `targetHost` is overwritten with its address.
    pub metadata: MachineMetadata,
    /// The `services` list of the fleet JSON.
    pub services: Vec<String>,
    /// Generation 1's system.
    pub system: SystemSpec,
    /// Reboot behaviour at start (changeable with `TestHost::set_mode`).
    pub mode: HostMode,
    /// How long a reboot stays down (changeable with `TestHost::set_boot_delay`).
    pub boot_delay: Duration,
    /// Latency added each way to every ssh connection to the host (zero:
    /// none). A ProxyCommand on the controller holds each chunk that long,
    /// as `tc netem delay` would (the test kernel has no netem).
    pub latency: Duration,
}

impl HostSpec {
    /// A host with test-friendly metadata: an http check on
    /// localhost:80/health and a tcp check on 5432 (both run on the host),
    /// no reboot delay, short deadlines, no minimum healthy time.
    pub fn new(name: &str) -> Self {
        let check = |c: serde_json::Value| {
            let mut base = json!({ "timeout": 2, "interval": 1, "failureThreshold": 3 });
            if let (Some(b), Some(c)) = (base.as_object_mut(), c.as_object()) {
                b.extend(c.clone());
            }
            base
        };
        let metadata = json!({
            "role": "test-host",
            "rebootOrder": 0,
            "healthChecks": [
                check(json!({ "type": "http", "url": "http://localhost:80/health" })),
                check(json!({ "type": "tcp", "port": 5432 })),
            ],
            "orchestration": { "rebootDelay": 0, "healthyDeadline": 20, "minHealthyTime": 0, "rebootTimeout": 30 },
        });
        let metadata = serde_json::from_value(metadata).expect("the default test metadata is valid");
        HostSpec {
            name: name.into(),
            metadata,
            services: vec!["lab-test-agent".into(), "sshd".into()],
            system: SystemSpec::default(),
            mode: HostMode::Normal,
            boot_delay: Duration::from_millis(300),
            latency: Duration::ZERO,
        }
    }
    /// Sets `dependencies`.
    pub fn depends_on(mut self, deps: &[&str]) -> Self {
        self.metadata.dependencies = deps.iter().map(|d| d.to_string()).collect();
        self
    }
    /// Sets `orchestration.deployStrategy`.
    pub fn strategy(mut self, strategy: DeployStrategy) -> Self {
        self.metadata.orchestration.deploy_strategy = strategy;
        self
    }
    /// Sets `orchestration.criticalityLevel`.
    pub fn criticality(mut self, level: Criticality) -> Self {
        self.metadata.orchestration.criticality_level = level;
        self
    }
    /// Sets `rebootOrder`.
    pub fn reboot_order(mut self, order: i64) -> Self {
        self.metadata.reboot_order = order;
        self
    }
    /// Sets generation 1's system.
    pub fn system(mut self, system: SystemSpec) -> Self {
        self.system = system;
        self
    }
    /// Sets the reboot mode at start.
    pub fn mode(mut self, mode: HostMode) -> Self {
        self.mode = mode;
        self
    }
    /// Sets how long a reboot stays down.
    pub fn boot_delay(mut self, delay: Duration) -> Self {
        self.boot_delay = delay;
        self
    }
    /// Sets the latency added each way to ssh connections to the host.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
}

/// A whole test fleet.
#[derive(Debug, Clone, Default)]
pub struct FleetSpec {
    /// Its hosts (up to 240).
    pub hosts: Vec<HostSpec>,
    /// The `lab-testhost-agent` binary; by default `$LAB_TESTHOST_AGENT`,
    /// else next to the running test binary's target directory.
    pub agent: Option<PathBuf>,
}

impl FleetSpec {
    /// A fleet of these hosts.
    pub fn new(hosts: Vec<HostSpec>) -> Self {
        FleetSpec { hosts, agent: None }
    }
}

//! `lab show NAME`.

use lab_core::metadata::{HealthCheck, Machine};

use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::render::{list, print_json, word};

/// Options of `lab show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The machine's name (its nixosConfigurations attribute).
    pub name: String,
    /// Print the machine's JSON contract.
    #[arg(long)]
    pub json: bool,
}

/// Shows one machine in full; an unknown name is an error naming the
/// nearest names.
pub fn run(fleet: &FleetArgs, args: &Args) -> anyhow::Result<Exit> {
    let evaluation = fleet.load()?;
    let machine = evaluation.find(&args.name)?;
    if args.json {
        print_json(machine)?;
    } else {
        crate::out::print(render(machine))?;
    }
    Ok(Exit::Success)
}

fn render(machine: &Machine) -> String {
    let m = &machine.metadata;
    let o = &m.orchestration;
    let fields = [
        ("name", machine.name.clone()),
        ("hostname", machine.hostname.clone().unwrap_or_else(|| "-".into())),
        ("target", super::machines::target(machine)),
        ("role", m.role.clone()),
        ("groups", list(&m.groups)),
        ("rebootOrder", m.reboot_order.to_string()),
        ("dependencies", list(&m.dependencies)),
        ("services", list(&machine.services)),
        ("deployStrategy", word(&o.deploy_strategy)),
        ("criticalityLevel", word(&o.criticality_level)),
        ("rebootDelay", format!("{}s", o.reboot_delay)),
        ("rebootTimeout", format!("{}s", o.reboot_timeout)),
        ("healthyDeadline", format!("{}s", o.healthy_deadline)),
        ("minHealthyTime", format!("{}s", o.min_healthy_time)),
    ];
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, value) in fields {
        // Values come from the fleet: shown with control characters escaped.
        out.push_str(&format!("{key:width$}  {}\n", lab_core::printable::printable(&value)));
    }
    let checks = if m.health_checks.is_empty() { "-" } else { "" };
    out.push_str(format!("{:width$}  {checks}", "healthChecks").trim_end());
    out.push('\n');
    for check in &m.health_checks {
        out.push_str(&format!("  - {}\n", lab_core::printable::printable(&check_line(check))));
    }
    out
}

fn check_line(check: &HealthCheck) -> String {
    let c = check.common();
    let mut line = check.label();
    if let HealthCheck::Http { expected_status, .. } = check {
        line.push_str(&format!(" expect {}", expected_status.join(",")));
    }
    line.push_str(&format!(
        " (on {}, timeout {}s, every {}s, pass {}x, fail {}x{})",
        word(&c.run_on),
        c.timeout,
        c.interval,
        c.success_threshold,
        c.failure_threshold,
        if c.required { "" } else { ", optional" }
    ));
    line
}

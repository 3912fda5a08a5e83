//! `lab machines`.

use lab_core::metadata::Machine;

use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::render::{failures, list, print_json, table, word};

/// Options of `lab machines`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the JSON contract: an object keyed by machine name.
    #[arg(long)]
    pub json: bool,
}

/// Lists the fleet's machines, sorted by name; hosts that fail to evaluate
/// are reported on stderr and make the exit status 1.
pub fn run(fleet: &FleetArgs, args: &Args) -> anyhow::Result<Exit> {
    let evaluation = fleet.load()?;
    if args.json {
        print_json(&evaluation.machines)?;
    } else {
        let rows: Vec<Vec<String>> = evaluation.machines.values().map(row).collect();
        crate::out::print(table(
            &["NAME", "ROLE", "GROUPS", "REBOOTORDER", "DEPENDENCIES", "STRATEGY", "CRITICALITY", "TARGET"],
            &rows,
        ))?;
    }
    Ok(failures(&evaluation))
}

fn row(machine: &Machine) -> Vec<String> {
    let m = &machine.metadata;
    vec![
        machine.name.clone(),
        m.role.clone(),
        list(&m.groups),
        m.reboot_order.to_string(),
        list(&m.dependencies),
        word(&m.orchestration.deploy_strategy),
        word(&m.orchestration.criticality_level),
        target(machine),
    ]
}

/// `[user@]host[:port]`, the user and port shown only when not the defaults.
pub fn target(machine: &Machine) -> String {
    let m = &machine.metadata;
    let mut out = String::new();
    if m.target_user != lab_core::metadata::DEFAULT_TARGET_USER {
        out.push_str(&format!("{}@", m.target_user));
    }
    out.push_str(machine.target_host());
    if m.target_port != lab_core::metadata::DEFAULT_TARGET_PORT {
        out.push_str(&format!(":{}", m.target_port));
    }
    out
}

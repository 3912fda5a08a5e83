//! `lab plan deploy --diff`: builds the selected machines' new systems
//! (progress on stderr), then reads each machine's running system over ssh
//! and compares (lab_core::diff).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result};
use lab_core::build::{Builder, NixBuilder};
use lab_core::diff::{fleet_diff, MachineDiff};
use lab_core::graph::Fleet;
use lab_core::settings::FleetSettings;

use crate::fleet::FleetArgs;
use crate::ssh::SshArgs;

/// Every machine of `fleet` with what deploying its new system changes,
/// sorted by machine.
pub fn gather(
    fleet_args: &FleetArgs,
    fleet: &Fleet,
    settings: &FleetSettings,
    ssh: &SshArgs,
    parallel: usize,
) -> Result<Vec<MachineDiff>> {
    let names: Vec<String> = fleet.machines().iter().map(|m| m.name.clone()).collect();
    let count = match names.len() {
        1 => "1 machine".to_string(),
        n => format!("{n} machines"),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let builder = NixBuilder::new(&fleet_args.source()?)?;
    let started = Instant::now();
    eprintln!("lab: evaluating the new systems of {count}…");
    let systems = runtime.block_on(builder.instantiate(&names))?;
    eprintln!("lab: building the new systems of {count} (nix-store --realise)…");
    let refs: Vec<_> = systems.values().cloned().collect();
    runtime.block_on(builder.build(&refs))?;
    eprintln!(
        "lab: built in {:.1} s; reading the running systems of {count} over ssh…",
        started.elapsed().as_secs_f64()
    );
    let new: BTreeMap<String, String> = systems.into_iter().map(|(name, s)| (name, s.out_path)).collect();
    let transport = ssh.transport(settings)?;
    let targets = lab_core::reach::reach(&transport, fleet.machines()).context("cannot reach the machines")?;
    let diffs = runtime.block_on(async {
        let diffs = fleet_diff(&targets, &new, parallel).await;
        transport.close().await;
        diffs
    });
    for d in &diffs {
        if let Some(error) = &d.error {
            eprintln!("error: {}: no diff: {error}", lab_core::printable::printable(&d.machine));
        }
    }
    Ok(diffs)
}

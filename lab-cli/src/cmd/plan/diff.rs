//! `lab plan deploy --diff`: lab_core::diff::fleet_diff_built over ssh,
//! its stages on stderr.

use std::time::Instant;

use anyhow::{Context, Result};
use lab_core::build::NixBuilder;
use lab_core::diff::{fleet_diff_built, MachineDiff, Stage};
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
    let count = match fleet.machines().len() {
        1 => "1 machine".to_string(),
        n => format!("{n} machines"),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let builder = NixBuilder::new(&fleet_args.source()?)?;
    let transport = ssh.transport(settings)?;
    let targets = lab_core::reach::reach(&transport, fleet.machines()).context("cannot reach the machines")?;
    let started = Instant::now();
    let mut progress = |stage: Stage| match stage {
        Stage::Evaluating => eprintln!("lab: evaluating the new systems of {count}…"),
        Stage::Building => eprintln!("lab: building the new systems of {count} (nix-store --realise)…"),
        Stage::Reading => eprintln!(
            "lab: built in {:.1} s; reading the running systems of {count} over ssh…",
            started.elapsed().as_secs_f64()
        ),
    };
    let diffs = runtime.block_on(async {
        let diffs = fleet_diff_built(&builder, &targets, parallel, &mut progress).await;
        transport.close().await;
        diffs
    })?;
    for d in &diffs {
        if let Some(error) = &d.error {
            eprintln!("error: {}: no diff: {error}", lab_core::printable::printable(&d.machine));
        }
    }
    Ok(diffs)
}

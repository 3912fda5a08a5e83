//! Options shared by the commands that order the fleet (`sequence`,
//! `graph`, `plan`), and loading the fleet as a validated graph.

use std::num::NonZeroUsize;

use anyhow::Result;
use clap::Args;
pub use lab_core::graph::Purpose;
use lab_core::graph::{usable, Expand, Fleet, Limits, OrderError, Usable};
use lab_core::settings::FleetSettings;

use crate::fleet::FleetArgs;

/// `--on` and what to add to it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Selection")]
pub struct SelectArgs {
    /// Only these machines: names, @group, role:NAME, comma-separated; globs like `web-*` or `dns[12]`;
    /// name:NAME for an exact name (`name:@x`), `\,` for a comma inside one.
    #[arg(long, value_name = "EXPR")]
    pub on: Option<String>,
    /// Also the machines the selected ones depend on, transitively.
    #[arg(long, requires = "on")]
    pub with_dependencies: bool,
    /// Also the machines that depend on the selected ones, transitively.
    #[arg(long, requires = "on")]
    pub with_dependents: bool,
}

/// How much may be down at once.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Machines per wave (default: the fleet's lab.maxParallel, else 1: one after the other).
    /// Deploy waves do not count machines deployed with `recreate` (all of those ready go at once).
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<NonZeroUsize>,
    /// At most N machines of any one group per wave (default: the fleet's lab.maxUnavailablePerGroup).
    #[arg(long, value_name = "N")]
    pub max_unavailable_per_group: Option<NonZeroUsize>,
}

impl LimitArgs {
    /// The limits these options give, the fleet's settings filling in what
    /// they leave out.
    pub fn limits(&self, settings: &FleetSettings) -> Limits {
        Limits::resolve(self.max_parallel, self.max_unavailable_per_group, settings)
    }
}

/// Reads the fleet, builds its graph and applies `--on`. `None` when a
/// machine the selection needs is broken (lab-core decides which, see
/// `lab_core::graph::usable`): what is wrong is already on stderr and the
/// command exits 1. Broken machines the selection leaves alone are named
/// in warnings.
pub fn load(fleet: &FleetArgs, select: &SelectArgs) -> Result<Option<(Fleet, FleetSettings)>> {
    load_for(fleet, select, Purpose::Order)
}

/// [`load`] for `purpose`: `lab plan` shows a run, so it needs what the
/// run needs ([`Purpose::Run`]) and refuses what the run would refuse.
pub fn load_for(fleet: &FleetArgs, select: &SelectArgs, purpose: Purpose) -> Result<Option<(Fleet, FleetSettings)>> {
    let evaluation = fleet.load()?;
    let expand = Expand { dependencies: select.with_dependencies, dependents: select.with_dependents };
    match usable(&evaluation, select.on.as_deref(), expand, purpose) {
        Ok(Usable { fleet, outside }) => {
            crate::selection::warn_outside(&outside);
            Ok(Some((fleet, evaluation.settings)))
        }
        Err(OrderError::Blocked(blocked)) => {
            for line in blocked.details() {
                eprintln!("{line}");
            }
            match &blocked.on {
                None => eprintln!("error: the fleet cannot be ordered; fix the problems above (see `lab check`)"),
                Some(_) => eprintln!("error: {}", blocked.headline()),
            }
            Ok(None)
        }
        Err(OrderError::Invalid(problems)) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("error: the fleet cannot be ordered; fix the problems above (see `lab check`)");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

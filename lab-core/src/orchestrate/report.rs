//! How a run ended, machine by machine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::record::Outcome;

/// Where a machine ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MachineOutcome {
    /// Every step of it finished.
    Done,
    /// Nothing was needed (`--only-if-needed`).
    NotNeeded,
    /// A step failed; the machine state is in the message.
    Failed,
    /// It was put back on its previous generation.
    RolledBack,
    /// Not touched because a dependency failed or the run stopped.
    Skipped,
    /// Not reached before the run was interrupted.
    NotStarted,
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The run.
    pub run_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Each machine's result with a reason, by name.
    pub machines: BTreeMap<String, (MachineOutcome, String)>,
}

impl Report {
    /// One line: counts per result, and what to do next.
    pub fn summary(&self) -> String {
        let mut counts: BTreeMap<MachineOutcome, usize> = BTreeMap::new();
        for (outcome, _) in self.machines.values() {
            *counts.entry(*outcome).or_default() += 1;
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(o, n)| {
                let word = match o {
                    MachineOutcome::Done => "done",
                    MachineOutcome::NotNeeded => "not needed",
                    MachineOutcome::Failed => "failed",
                    MachineOutcome::RolledBack => "rolled back",
                    MachineOutcome::Skipped => "skipped",
                    MachineOutcome::NotStarted => "not started",
                };
                format!("{n} {word}")
            })
            .collect();
        let next = match self.outcome {
            Outcome::Success => String::new(),
            Outcome::Failed => "; see the failures above, fix them and run again".into(),
            Outcome::Interrupted => format!("; continue with `lab resume {}`", self.run_id),
        };
        format!("{}: {}{next}", self.outcome.name(), parts.join(", "))
    }
}

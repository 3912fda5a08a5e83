//! What a run is asked to do, in a form the journal keeps, so `lab resume`
//! rebuilds exactly the same plan (and can tell when it no longer can).

use serde::{Deserialize, Serialize};

use crate::eval::Source;
use crate::graph::Limits;
use crate::plan::{Goal, PlanKind, PlanOptions};

/// Which command a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// `lab deploy`.
    Deploy,
    /// `lab reboot`.
    Reboot,
    /// `lab orchestrate`: deploy everything, then reboot what needs it.
    Orchestrate,
}

impl RunKind {
    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            RunKind::Deploy => "deploy",
            RunKind::Reboot => "reboot",
            RunKind::Orchestrate => "orchestrate",
        }
    }

    /// The goals a run of this kind takes: orchestrate deploys for the
    /// reboots that follow, so only a goal that sets the boot default.
    pub fn goals(self) -> &'static [Goal] {
        match self {
            RunKind::Orchestrate => &[Goal::Boot, Goal::Switch],
            RunKind::Deploy | RunKind::Reboot => &[Goal::Switch, Goal::Boot, Goal::Test, Goal::DryActivate],
        }
    }

    /// The phases of the run, in order.
    pub fn phases(self) -> &'static [PlanKind] {
        match self {
            RunKind::Deploy => &[PlanKind::Deploy],
            RunKind::Reboot => &[PlanKind::Reboot],
            RunKind::Orchestrate => &[PlanKind::Deploy, PlanKind::Reboot],
        }
    }
}

/// The fleet source, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum SourceRecord {
    /// A flake reference.
    Flake {
        /// The reference.
        reference: String,
    },
    /// A Nix file.
    File {
        /// The file (absolute).
        path: String,
    },
    /// A hosts directory.
    HostsDir {
        /// The directory (absolute).
        dir: String,
        /// The nixpkgs.
        nixpkgs: String,
    },
    /// The JSON contract.
    JsonFile {
        /// The file (absolute).
        path: String,
    },
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

impl From<&Source> for SourceRecord {
    fn from(source: &Source) -> Self {
        match source {
            Source::Flake(reference) => {
                let local = !reference.contains(':') && (reference.starts_with(['.', '/']) || reference.contains('/'));
                let reference = if local { absolute(std::path::Path::new(reference)) } else { reference.clone() };
                SourceRecord::Flake { reference }
            }
            Source::File(path) => SourceRecord::File { path: absolute(path) },
            Source::HostsDir { dir, nixpkgs } => {
                SourceRecord::HostsDir { dir: absolute(dir), nixpkgs: absolute(nixpkgs) }
            }
            Source::JsonFile(path) => SourceRecord::JsonFile { path: absolute(path) },
        }
    }
}

impl SourceRecord {
    /// The source to evaluate.
    pub fn source(&self) -> Source {
        match self {
            SourceRecord::Flake { reference } => Source::Flake(reference.clone()),
            SourceRecord::File { path } => Source::File(path.into()),
            SourceRecord::HostsDir { dir, nixpkgs } => Source::HostsDir { dir: dir.into(), nixpkgs: nixpkgs.into() },
            SourceRecord::JsonFile { path } => Source::JsonFile(path.into()),
        }
    }

    /// For messages and the fleet's lock name: `file /abs/fleet.nix`.
    pub fn describe(&self) -> String {
        match self {
            SourceRecord::Flake { reference } => format!("flake {reference}"),
            SourceRecord::File { path } => format!("file {path}"),
            SourceRecord::HostsDir { dir, .. } => format!("hosts directory {dir}"),
            SourceRecord::JsonFile { path } => format!("JSON file {path}"),
        }
    }
}

/// A run spec lab refuses to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The goal is not one the run's kind takes.
    #[error("{kind} does not take the goal {goal}: use one of {}", allowed.join(", "))]
    Goal {
        /// The command.
        kind: &'static str,
        /// The goal asked for.
        goal: &'static str,
        /// The goals it takes.
        allowed: Vec<&'static str>,
    },
}

/// Everything that decides a run's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSpec {
    /// The command.
    pub kind: RunKind,
    /// The fleet.
    pub source: SourceRecord,
    /// `--on`: the machines, as a selection expression; all when absent.
    #[serde(default)]
    pub on: Option<String>,
    /// Add the selected machines' dependencies.
    #[serde(default)]
    pub with_dependencies: bool,
    /// Add the selected machines' dependents.
    #[serde(default)]
    pub with_dependents: bool,
    /// How much may be down at once.
    #[serde(default)]
    pub limits: Limits,
    /// Goal, build place, delays, only-if-needed.
    #[serde(default)]
    pub options: PlanOptions,
    /// Go on with unrelated machines after a failure.
    #[serde(default)]
    pub keep_going: bool,
    /// Stop once this many machines failed (implies going on until then).
    #[serde(default)]
    pub max_failures: Option<usize>,
}

impl RunSpec {
    /// A run of `kind` on `source` with lab's defaults (orchestrate: goal
    /// boot, then reboot only where needed).
    pub fn new(kind: RunKind, source: &Source) -> Self {
        let mut options = PlanOptions::default();
        if kind == RunKind::Orchestrate {
            options.goal = Goal::Boot;
            options.only_if_needed = true;
        }
        RunSpec {
            kind,
            source: source.into(),
            on: None,
            with_dependencies: false,
            with_dependents: false,
            limits: Limits::default(),
            options,
            keep_going: false,
            max_failures: None,
        }
    }

    /// Refuses a spec no run can carry out (so every frontend refuses the
    /// same ones): today, a goal its kind does not take (see
    /// [`RunKind::goals`]).
    pub fn validate(&self) -> Result<(), SpecError> {
        let allowed = self.kind.goals();
        if !allowed.contains(&self.options.goal) {
            return Err(SpecError::Goal {
                kind: self.kind.name(),
                goal: self.options.goal.name(),
                allowed: allowed.iter().map(|g| g.name()).collect(),
            });
        }
        Ok(())
    }

    /// How many failed machines stop the run: 1 unless told to keep going.
    pub fn failure_budget(&self) -> usize {
        match (self.keep_going, self.max_failures) {
            (_, Some(n)) => n.max(1),
            (true, None) => usize::MAX,
            (false, None) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orchestrate_takes_only_the_boot_or_switch_goal() {
        let source = Source::JsonFile("/fleet.json".into());
        let mut spec = RunSpec::new(RunKind::Orchestrate, &source);
        assert_eq!(spec.validate(), Ok(()), "its default goal, boot");
        spec.options.goal = Goal::Switch;
        assert_eq!(spec.validate(), Ok(()));
        for goal in [Goal::Test, Goal::DryActivate] {
            spec.options.goal = goal;
            let err = spec.validate().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("orchestrate does not take the goal {}: use one of boot, switch", goal.name())
            );
        }
        for kind in [RunKind::Deploy, RunKind::Reboot] {
            let mut spec = RunSpec::new(kind, &source);
            for goal in [Goal::Switch, Goal::Boot, Goal::Test, Goal::DryActivate] {
                spec.options.goal = goal;
                assert_eq!(spec.validate(), Ok(()), "{kind:?} {goal:?}");
            }
        }
    }
}

//! What the journal records, typed: the details of a run's start, of each
//! step transition, and how the run ended. The writer (the orchestrator) and
//! the reader (resume, status) share these types, so the compiler checks
//! that they agree.
//!
//! The JSON is the one lab always wrote (no tag: each detail is an object of
//! its own fields), so journals written by an older lab read as before; a
//! detail this lab does not know is kept as written ([`StepDetail::Other`]).

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::spec::RunSpec;
use crate::plan::Goal;
use crate::remote::Activated;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every step finished.
    Success,
    /// Something failed or was rolled back.
    Failed,
    /// Stopped on request (Ctrl-C) after the steps in flight; resumable.
    Interrupted,
}

impl Outcome {
    /// The word the journal records.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// What the run-started record keeps for resume: what the run was asked,
/// each machine's system and metadata hash, and whether this start is a
/// resumption.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStart {
    /// What the run was asked to do; `None` when the record holds none that
    /// this lab reads (resume then refuses the journal).
    #[serde(default, deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub spec: Option<RunSpec>,
    /// Each machine's system (its output path), by name.
    #[serde(default, deserialize_with = "lenient_or_default")]
    pub systems: BTreeMap<String, String>,
    /// A short hash of each machine's lab.machine metadata, by name.
    #[serde(default, deserialize_with = "lenient_or_default")]
    pub metadata: BTreeMap<String, String>,
    /// True when this start continues an interrupted run.
    #[serde(default)]
    pub resumed: bool,
}

impl RunStart {
    /// True for a record without anything in it (an older journal's `null`).
    pub fn is_empty(&self) -> bool {
        *self == RunStart::default()
    }
}

/// What a step record says, by the step and its new state. Each variant
/// names the steps that write it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum StepDetail {
    /// Nothing (a planned step, most finished ones).
    #[default]
    None,
    /// A build started: the system and its derivation.
    Build {
        /// The system's output path.
        system: String,
        /// Its derivation.
        drv: String,
    },
    /// A copy or a blue-green commit started, or an activation that failed
    /// before anything was recorded about it: the system.
    System {
        /// The system's output path.
        system: String,
    },
    /// An activation started: the system, the goal, and every unit and
    /// generation that undo it (resume follows these).
    Activation {
        /// The system's output path.
        system: String,
        /// What switch-to-configuration was asked.
        goal: Goal,
        /// The attempt's units and how to go back.
        activated: Box<Activated>,
    },
    /// An activation finished (and, where the running system changed, was
    /// confirmed).
    Activated {
        /// The attempt's units and how to go back.
        activated: Box<Activated>,
    },
    /// The rebootDelay wait started.
    Delay {
        /// Seconds waited.
        seconds: u64,
    },
    /// A reboot started or was issued, or the wait for boot started: the
    /// boot id from before the reboot, the proof on resume.
    BootIdBefore {
        /// The boot id before the reboot.
        boot_id_before: String,
    },
    /// An interrupted reboot was found done (its boot id changed).
    Verified {
        /// Always true.
        verified: bool,
    },
    /// The machine came back.
    BootId {
        /// Its new boot id.
        boot_id: String,
    },
    /// `--only-if-needed` checked the machine.
    RebootNeeded {
        /// Whether it needs a reboot.
        needed: bool,
        /// Why, when it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// The health checks passed.
    Healthy {
        /// Always true.
        healthy: bool,
    },
    /// The step failed.
    Failed {
        /// Why, and what to do.
        error: String,
    },
    /// The step did not run.
    Skipped {
        /// Why.
        reason: String,
    },
    /// The machine went back to its previous generation.
    RolledBack {
        /// Why.
        reason: String,
        /// The generation it runs again.
        system: String,
        /// Whether it passed its checks again afterwards.
        healthy: bool,
    },
    /// A detail this lab does not know, kept as written.
    Other(serde_json::Value),
}

impl StepDetail {
    /// True for [`StepDetail::None`].
    pub fn is_none(&self) -> bool {
        *self == StepDetail::None
    }

    /// The activation attempt this detail records, if it is one.
    pub fn activated(&self) -> Option<&Activated> {
        match self {
            StepDetail::Activation { activated, .. } | StepDetail::Activated { activated } => Some(activated.as_ref()),
            _ => None,
        }
    }

    /// The boot id from before a reboot, if this detail records one.
    pub fn boot_id_before(&self) -> Option<&str> {
        match self {
            StepDetail::BootIdBefore { boot_id_before } => Some(boot_id_before),
            _ => None,
        }
    }

    /// Why the step failed or was undone, if it was.
    pub fn failure(&self) -> Option<&str> {
        match self {
            StepDetail::Failed { error } => Some(error),
            StepDetail::RolledBack { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// `Some(value)` when it reads as `T`, else `None`: a part of a record
/// this lab cannot read is reported where it is used, not as damage.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(serde_json::from_value(serde_json::Value::deserialize(d)?).ok())
}

pub(super) fn lenient_or_default<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(lenient(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// True when everything in `old` is in `new` as it was (`new` may
    /// have more fields: those a newer lab adds, with their defaults).
    fn kept(old: &serde_json::Value, new: &serde_json::Value) -> bool {
        match (old, new) {
            (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
                o.iter().all(|(k, v)| n.get(k).is_some_and(|w| kept(v, w)))
            }
            _ => old == new,
        }
    }

    /// Every detail an older lab wrote reads as its typed variant and
    /// writes back what it read (plus the defaults of fields added since).
    #[test]
    fn details_read_and_write_the_json_lab_always_wrote() {
        let activated = json!({
            "probe": {"sh": "/bin/sh", "nixEnv": "nix-env", "systemdRun": "systemd-run", "systemctl": "systemctl",
                      "current": "/nix/store/old", "profile": "/nix/store/old"},
            "rollback": {"profile": "/nix/store/old", "system": "/nix/store/old", "timers": ["t1", "t2"]},
            "units": {"switch": "s", "watchdog": "w", "confirm": "c", "undo": "u"},
        });
        let cases = [
            (json!(null), "None"),
            (json!({"system": "/nix/store/a", "drv": "/nix/store/a.drv"}), "Build"),
            (json!({"system": "/nix/store/a"}), "System"),
            (json!({"system": "/nix/store/a", "goal": "switch", "activated": activated}), "Activation"),
            (json!({"activated": activated}), "Activated"),
            (json!({"seconds": 5}), "Delay"),
            (json!({"bootIdBefore": "b0"}), "BootIdBefore"),
            (json!({"verified": true}), "Verified"),
            (json!({"bootId": "b1"}), "BootId"),
            (json!({"needed": true, "why": "kernel"}), "RebootNeeded"),
            (json!({"needed": false}), "RebootNeeded"),
            (json!({"healthy": true}), "Healthy"),
            (json!({"error": "boom"}), "Failed"),
            (json!({"reason": "dep failed"}), "Skipped"),
            (json!({"reason": "r", "system": "/nix/store/old", "healthy": false}), "RolledBack"),
            (json!({"something": "new"}), "Other"),
        ];
        for (value, variant) in cases {
            let detail: StepDetail = serde_json::from_value(value.clone()).unwrap();
            let debug = format!("{detail:?}");
            assert!(debug.starts_with(variant), "{value} read as {debug}");
            let written = serde_json::to_value(&detail).unwrap();
            assert!(kept(&value, &written), "{value} written back as {written}");
            assert_eq!(serde_json::from_value::<StepDetail>(written).unwrap(), detail);
        }
    }

    #[test]
    fn a_start_record_reads_what_it_can() {
        let start: RunStart = serde_json::from_value(json!({"spec": {"kind": "nonsense"}, "resumed": true})).unwrap();
        assert_eq!(start.spec, None);
        assert!(start.resumed);
        assert!(serde_json::from_value::<RunStart>(json!({})).unwrap().is_empty());
    }
}

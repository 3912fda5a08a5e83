//! Fleet-wide settings, declared in Nix beside the machines: the flake's
//! `lab` output (or a fleet file's top-level `lab` attribute, or
//! `HOSTS_DIR/lab.nix`), read by the same evaluation as the machines.
//! Command-line flags override them.
//!
//! ```nix
//! lab = {
//!   maxParallel = 2;                      # machines per wave (default 1)
//!   maxUnavailablePerGroup = 1;           # at most this many of a group per wave
//!   rebootWindow = "Sat 02:00-05:00";     # reboots only inside it (--ignore-window overrides)
//!   notify = { command = [ "/run/current-system/sw/bin/notify-send-lab" ]; webhook = "https://…"; timeout = 10; };
//!   ssh.options = [ "ConnectTimeout=10" ];
//!   unmanaged = [ "installer" ];          # without lab's module on purpose: no warning
//! };
//! ```

use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::notify::NotifyConfig;
use crate::window::Window;

/// The fleet's `lab` settings; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetSettings {
    /// Machines per wave (default 1: strictly one after the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<NonZeroUsize>,
    /// At most this many machines of any one group per wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable_per_group: Option<NonZeroUsize>,
    /// Reboots happen only inside this window (e.g. "Sat 02:00-05:00").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_window: Option<Window>,
    /// Where failures, rollbacks and unhealthy machines are reported.
    #[serde(default, skip_serializing_if = "NotifyConfig::is_empty")]
    pub notify: NotifyConfig,
    /// ssh settings for every machine.
    #[serde(default, skip_serializing_if = "SshSettings::is_empty")]
    pub ssh: SshSettings,
    /// Configurations that are without lab's module on purpose (an
    /// installer image, a test VM): lab does not warn about them. A name
    /// here that is managed, or no configuration at all, is a `lab check`
    /// warning, so a stale entry does not hide a machine later.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
}

/// `lab.ssh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshSettings {
    /// Extra `-o Key=Value` options for every connection.
    #[serde(default)]
    pub options: Vec<String>,
}

impl SshSettings {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

/// Settings that do not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the fleet's lab settings: {path}: {message}; see the documented settings (maxParallel, maxUnavailablePerGroup, rebootWindow, notify, ssh.options, unmanaged)")]
pub struct SettingsError {
    /// Where, e.g. `rebootWindow`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl FleetSettings {
    /// Reads settings from their JSON form (null or absent: the defaults).
    pub fn from_json(value: serde_json::Value) -> Result<FleetSettings, SettingsError> {
        if value.is_null() {
            return Ok(FleetSettings::default());
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            SettingsError { path, message: e.into_inner().to_string() }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_read_with_their_defaults_and_errors_name_the_field() {
        assert_eq!(FleetSettings::from_json(json!(null)).unwrap(), FleetSettings::default());
        let s = FleetSettings::from_json(json!({
            "maxParallel": 3, "rebootWindow": "Sat 02:00-05:00", "ssh": {"options": ["ConnectTimeout=5"]}
        }))
        .unwrap();
        assert_eq!(s.max_parallel, NonZeroUsize::new(3));
        assert_eq!(s.reboot_window.unwrap().to_string(), "Sat 02:00-05:00");
        let s = FleetSettings::from_json(json!({"unmanaged": ["installer"]})).unwrap();
        assert_eq!(s.unmanaged, ["installer"]);
        let err = FleetSettings::from_json(json!({"maxParalel": 3})).unwrap_err().to_string();
        assert!(err.starts_with("the fleet's lab settings: maxParalel: unknown field `maxParalel`"), "{err}");
        let err = FleetSettings::from_json(json!({"rebootWindow": "Caturday"})).unwrap_err().to_string();
        assert!(err.contains("rebootWindow: maintenance window \"Caturday\""), "{err}");
    }
}

//! Run options for the fleet's notification hooks and maintenance window;
//! they override the fleet's `lab.notify` and `lab.rebootWindow`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use lab_core::notify::NotifyConfig;
use lab_core::orchestrate::OutsideWindow;
use lab_core::settings::FleetSettings;

/// `--notify-*`.
#[derive(Debug, Clone, Default, Args)]
pub struct NotifyArgs {
    /// A JSON file like the fleet's lab.notify ({"command": [ARGV…], "webhook": URL, "timeout": SECONDS})
    /// [default: $LAB_NOTIFY_CONFIG, as services.lab-orchestrator.notify sets it].
    #[arg(long, value_name = "FILE")]
    pub notify_config: Option<PathBuf>,
    /// A program told of a failed run or a rollback: one JSON event on its standard input.
    #[arg(long, value_name = "PROGRAM")]
    pub notify_command: Option<String>,
    /// A URL to POST the JSON event of a failed run or a rollback to.
    #[arg(long, value_name = "URL")]
    pub notify_webhook: Option<String>,
}

impl NotifyArgs {
    /// The hooks of a run: the fleet's, overridden by the file, then by the flags.
    pub fn config(&self, settings: &FleetSettings) -> Result<NotifyConfig> {
        let mut config = settings.notify.clone();
        let file = self.notify_config.clone().or_else(|| std::env::var_os("LAB_NOTIFY_CONFIG").map(PathBuf::from));
        if let Some(path) = &file {
            config = config.overridden_by(&NotifyConfig::from_file(path).map_err(anyhow::Error::msg)?);
        }
        let flags = NotifyConfig {
            command: self.notify_command.clone().map(|c| vec![c]),
            webhook: self.notify_webhook.clone(),
            timeout: None,
        };
        Ok(config.overridden_by(&flags))
    }
}

/// What a reboot does outside the maintenance window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutsideWindowArg {
    /// Wait until the window opens.
    Wait,
    /// Do not reboot; say when the window opens.
    #[default]
    Refuse,
}

/// `--outside-window`, `--ignore-window`.
#[derive(Debug, Clone, Default, Args)]
pub struct WindowArgs {
    /// Outside the fleet's rebootWindow: wait for it, or refuse to reboot.
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = OutsideWindowArg::Refuse)]
    pub outside_window: OutsideWindowArg,
    /// Reboot whatever the time, ignoring the fleet's rebootWindow.
    #[arg(long)]
    pub ignore_window: bool,
}

impl WindowArgs {
    /// What reboots do outside the window.
    pub fn outside(&self) -> OutsideWindow {
        match self.outside_window {
            OutsideWindowArg::Wait => OutsideWindow::Wait,
            OutsideWindowArg::Refuse => OutsideWindow::Refuse,
        }
    }
}

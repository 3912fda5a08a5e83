//! The ssh options shared by the commands that reach machines.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lab_core::exec::{SshOptions, SshTransport};
use lab_core::settings::FleetSettings;

/// How lab reaches machines over ssh.
#[derive(Debug, Clone, Args)]
pub struct SshArgs {
    /// An extra ssh option (as `ssh -o`), repeatable; wins over lab's defaults and the config files.
    #[arg(long = "ssh-option", value_name = "KEY=VALUE")]
    pub ssh_options: Vec<String>,
    /// An ssh config file to use instead of ~/.ssh/config (as `ssh -F`).
    #[arg(long, value_name = "PATH")]
    pub ssh_config: Option<PathBuf>,
}

impl SshArgs {
    /// The transport for this run (one multiplexed connection per machine).
    pub fn transport(&self, settings: &FleetSettings) -> Result<SshTransport> {
        SshTransport::new(self.options(settings)).context("cannot create the private directory for ssh control sockets")
    }

    /// The ssh options these flags give, then the fleet's `lab.ssh.options`
    /// (ssh takes the first value of an option, so the flags win).
    pub fn options(&self, settings: &FleetSettings) -> SshOptions {
        let given = SshOptions {
            options: self.ssh_options.clone(),
            config_file: self.ssh_config.clone(),
            ..SshOptions::default()
        };
        lab_core::reach::ssh_options(given, settings)
    }
}

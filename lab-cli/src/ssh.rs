//! The ssh options shared by the commands that reach machines.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lab_core::exec::{SshOptions, SshTransport};

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
    pub fn transport(&self) -> Result<SshTransport> {
        SshTransport::new(self.options()).context("cannot create the private directory for ssh control sockets")
    }

    /// The ssh options these flags give.
    pub fn options(&self) -> SshOptions {
        SshOptions { options: self.ssh_options.clone(), config_file: self.ssh_config.clone(), ..SshOptions::default() }
    }
}

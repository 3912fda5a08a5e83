//! The machine lab itself runs on.

use std::time::Duration;

use async_trait::async_trait;

use super::process::run_process;
use super::{parse_boot_id, Cmd, CopyOptions, ExecError, Executor, Output, BOOT_ID_PATH};

/// Runs commands as child processes of lab, for the machine lab runs on
/// (`lab health --local`, an orchestrator managing its own host).
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    machine: String,
    reboot_argv: Vec<String>,
}

impl LocalExecutor {
    /// An executor for this host, known to the fleet as `machine`.
    pub fn new(machine: impl Into<String>) -> Self {
        LocalExecutor { machine: machine.into(), reboot_argv: vec!["reboot".into()] }
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    fn machine(&self) -> &str {
        &self.machine
    }

    fn is_local(&self) -> bool {
        true
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let Some((program, args)) = cmd.argv.split_first() else {
            return Err(ExecError::Invalid { machine: self.machine.clone(), message: "empty command".into() });
        };
        let mut command = tokio::process::Command::new(program);
        command.args(args);
        run_process(&self.machine, &cmd.display(), command, cmd.stdin.as_deref(), cmd.timeout).await
    }

    /// The closure was built or fetched into this host's store, so there is
    /// nothing to copy; only its presence is checked.
    async fn copy_closure(&self, store_path: &str, _options: &CopyOptions) -> Result<(), ExecError> {
        if tokio::fs::metadata(store_path).await.is_ok() {
            Ok(())
        } else {
            Err(ExecError::Invalid {
                machine: self.machine.clone(),
                message: format!("{store_path} is not in the local Nix store; build it first"),
            })
        }
    }

    async fn boot_id(&self) -> Result<String, ExecError> {
        let bytes = tokio::fs::read(BOOT_ID_PATH).await.map_err(|e| ExecError::Invalid {
            machine: self.machine.clone(),
            message: format!("cannot read {BOOT_ID_PATH}: {e}"),
        })?;
        parse_boot_id(&self.machine, &bytes)
    }

    async fn reboot(&self) -> Result<(), ExecError> {
        self.run_ok(&Cmd::new(self.reboot_argv.clone()).timeout(Duration::from_secs(60))).await.map(drop)
    }
}

/// This host's name (for lock records, and to know a target that is this host).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

//! An executor that records what it would do and does nothing.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::Serialize;
use tokio::time::Instant;

use super::{Cmd, CopyOptions, ExecError, Executor, Output};

/// One action a [`DryRunExecutor`] was asked to perform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "action")]
pub enum DryRunAction {
    /// Run a command.
    Run {
        /// The machine.
        machine: String,
        /// The argv.
        argv: Vec<String>,
    },
    /// Copy a closure.
    CopyClosure {
        /// The machine.
        machine: String,
        /// The store path.
        store_path: String,
        /// Whether the machine would substitute.
        substitute_on_destination: bool,
    },
    /// Read the boot id.
    BootId {
        /// The machine.
        machine: String,
    },
    /// Reboot.
    Reboot {
        /// The machine.
        machine: String,
    },
    /// Wait for the machine to come back.
    WaitForBoot {
        /// The machine.
        machine: String,
    },
}

/// The shared, ordered record of a dry run (one log for many machines keeps
/// their relative order).
#[derive(Debug, Clone, Default)]
pub struct ActionLog(Arc<Mutex<Vec<DryRunAction>>>);

impl ActionLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every action recorded so far, in order.
    pub fn actions(&self) -> Vec<DryRunAction> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn push(&self, action: DryRunAction) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(action);
    }
}

/// Records every action in an [`ActionLog`] and performs none: commands
/// "succeed" with empty output, a reboot changes the (synthetic) boot id,
/// and so does a command ending in `reboot` (a reboot through `sudo`, for
/// a non-root target user).
#[derive(Debug)]
pub struct DryRunExecutor {
    machine: String,
    log: ActionLog,
    boots: Mutex<u64>,
}

impl DryRunExecutor {
    /// A dry-run executor for `machine` writing to `log`.
    pub fn new(machine: impl Into<String>, log: ActionLog) -> Self {
        DryRunExecutor { machine: machine.into(), log, boots: Mutex::new(0) }
    }

    fn current_boot_id(&self) -> String {
        let boots = *self.boots.lock().unwrap_or_else(PoisonError::into_inner);
        format!("dry-run-{}-boot-{boots}", self.machine)
    }
}

#[async_trait]
impl Executor for DryRunExecutor {
    fn machine(&self) -> &str {
        &self.machine
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        self.log.push(DryRunAction::Run { machine: self.machine.clone(), argv: cmd.argv.clone() });
        if cmd.argv.last().is_some_and(|a| a == "reboot") {
            *self.boots.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        }
        Ok(Output { status: Some(0), ..Output::default() })
    }

    async fn copy_closure(&self, store_path: &str, options: &CopyOptions) -> Result<(), ExecError> {
        self.log.push(DryRunAction::CopyClosure {
            machine: self.machine.clone(),
            store_path: store_path.to_string(),
            substitute_on_destination: options.substitute_on_destination,
        });
        Ok(())
    }

    async fn boot_id(&self) -> Result<String, ExecError> {
        self.log.push(DryRunAction::BootId { machine: self.machine.clone() });
        Ok(self.current_boot_id())
    }

    async fn reboot(&self) -> Result<(), ExecError> {
        self.log.push(DryRunAction::Reboot { machine: self.machine.clone() });
        *self.boots.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Ok(())
    }

    /// Answers at once: a dry run has nothing to wait for.
    async fn wait_for_boot(&self, old_boot_id: &str, _deadline: Instant) -> Result<String, ExecError> {
        self.log.push(DryRunAction::WaitForBoot { machine: self.machine.clone() });
        let current = self.current_boot_id();
        if current != old_boot_id {
            Ok(current)
        } else {
            Err(ExecError::BootTimeout {
                machine: self.machine.clone(),
                old_boot_id: old_boot_id.to_string(),
                last: "no reboot was recorded in this dry run".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_in_order_and_reboot_changes_boot_id() {
        let log = ActionLog::new();
        let a = DryRunExecutor::new("a", log.clone());
        let b = DryRunExecutor::new("b", log.clone());
        a.run(&Cmd::new(["true"])).await.unwrap();
        b.copy_closure("/nix/store/x", &CopyOptions::default()).await.unwrap();
        let before = a.boot_id().await.unwrap();
        a.reboot().await.unwrap();
        let after = a.wait_for_boot(&before, Instant::now()).await.unwrap();
        assert_ne!(before, after);
        assert!(b.wait_for_boot(&b.boot_id().await.unwrap(), Instant::now()).await.is_err());
        let escalated = DryRunExecutor::new("c", ActionLog::new());
        escalated.run(&Cmd::new(["sudo", "-n", "--", "reboot"])).await.unwrap();
        assert!(escalated.wait_for_boot("dry-run-c-boot-0", Instant::now()).await.is_ok());
        let json = serde_json::to_string(&log.actions()).unwrap();
        assert_eq!(
            json,
            r#"[{"action":"run","machine":"a","argv":["true"]},{"action":"copyClosure","machine":"b","storePath":"/nix/store/x","substituteOnDestination":false},{"action":"bootId","machine":"a"},{"action":"reboot","machine":"a"},{"action":"waitForBoot","machine":"a"},{"action":"bootId","machine":"b"},{"action":"waitForBoot","machine":"b"}]"#
        );
    }
}

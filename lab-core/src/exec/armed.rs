//! A reboot made ready ahead of time: its session is open on the machine,
//! waiting for one word on standard input, so starting it costs no
//! connection or session setup. In a reboot sequence that setup would
//! otherwise sit on the critical path of every machine.
//!
//! Safe by construction: the machine reboots only on the exact word; a
//! session that ends any other way (lab stops, the connection drops, the
//! value is dropped unfired) reads end-of-file and does nothing.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

use super::ExecError;

/// Runs `$@` only after reading the line `reboot`. A constant script: the
/// reboot command reaches it as arguments.
pub(crate) const ARMED_REBOOT_SCRIPT: &str = r#"read -r go && [ "$go" = reboot ] && exec "$@""#;

/// A reboot waiting on the machine for [`fire`](ArmedReboot::fire).
#[derive(Debug)]
pub struct ArmedReboot {
    machine: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ArmedReboot {
    /// Starts `command` (which runs [`ARMED_REBOOT_SCRIPT`] on the machine)
    /// with its standard input kept for [`fire`](Self::fire).
    pub(crate) fn spawn(machine: &str, mut command: Command) -> Result<ArmedReboot, ExecError> {
        command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
        let program = command.as_std().get_program().to_string_lossy().into_owned();
        let mut child =
            command.spawn().map_err(|source| ExecError::Spawn { machine: machine.to_string(), program, source })?;
        let stdin = child.stdin.take();
        Ok(ArmedReboot { machine: machine.to_string(), child, stdin })
    }

    /// Starts the reboot and waits (up to `timeout`) for its session to end,
    /// as it does when the machine goes down. `Err` when the session had
    /// already ended, so the reboot was not started: reboot another way.
    pub async fn fire(mut self, timeout: Duration) -> Result<(), ExecError> {
        let gone = |why: String| ExecError::Connection {
            machine: self.machine.clone(),
            command: "reboot (prepared session)".into(),
            message: why,
        };
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(gone(format!("the prepared session had ended ({status})")));
        }
        let Some(mut stdin) = self.stdin.take() else { return Err(gone("no session input".into())) };
        if let Err(e) = stdin.write_all(b"reboot\n").await {
            return Err(gone(format!("the prepared session is gone: {e}")));
        }
        drop(stdin);
        // Its end (the command returning, or the connection dropping as the
        // machine goes down) is not the proof; the new boot id is.
        let _ = tokio::time::timeout(timeout, self.child.wait()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(script_args: &[&str]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", ARMED_REBOOT_SCRIPT, "lab-reboot"]).args(script_args);
        cmd
    }

    #[tokio::test]
    async fn fires_only_on_the_word() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("rebooted");
        let armed = ArmedReboot::spawn("m", local(&["touch", mark.to_str().unwrap()])).unwrap();
        armed.fire(Duration::from_secs(10)).await.unwrap();
        assert!(mark.exists());

        // Dropped unfired: end-of-file, nothing runs.
        let other = dir.path().join("never");
        let armed = ArmedReboot::spawn("m", local(&["touch", other.to_str().unwrap()])).unwrap();
        drop(armed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!other.exists());
    }

    #[tokio::test]
    async fn a_session_that_ended_says_so() {
        let armed = ArmedReboot::spawn("m", Command::new("true")).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let err = armed.fire(Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, ExecError::Connection { .. }), "{err}");
    }
}

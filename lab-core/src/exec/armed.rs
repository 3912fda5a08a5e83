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

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        // Its standard error is kept: a machine that refuses the reboot (a
        // block inhibitor, a masked reboot.target) says why there.
        command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
        let program = command.as_std().get_program().to_string_lossy().into_owned();
        let mut child =
            command.spawn().map_err(|source| ExecError::Spawn { machine: machine.to_string(), program, source })?;
        let stdin = child.stdin.take();
        Ok(ArmedReboot { machine: machine.to_string(), child, stdin })
    }

    /// Starts the reboot and waits (up to `timeout`) for its session to end,
    /// as it does when the machine goes down. `Err(ExecError::Connection)`
    /// when the session had already ended, so the reboot was not started:
    /// reboot another way. `Err(ExecError::NonZeroExit)` when the machine
    /// refused the reboot: its command failed, with its own message.
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
        // machine goes down) is not the proof; the new boot id is. But a
        // command that failed on the machine is a refusal, known at once.
        let mut stderr = self.child.stderr.take();
        let ended = tokio::time::timeout(timeout, async {
            let mut text = String::new();
            if let Some(pipe) = stderr.as_mut() {
                let _ = pipe.read_to_string(&mut text).await;
            }
            (self.child.wait().await, text)
        })
        .await;
        match ended {
            // 255: ssh's own failure, which a machine going down causes.
            Ok((Ok(status), text)) if !status.success() && status.code() != Some(255) => Err(ExecError::NonZeroExit {
                machine: self.machine.clone(),
                command: "reboot".into(),
                status: status.code(),
                stderr: text,
            }),
            _ => Ok(()),
        }
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
    async fn a_refused_reboot_is_an_error_with_the_machines_message() {
        let refuse = ["sh", "-c", "echo 'Operation inhibited by \"backup\" (PID 42)' >&2; exit 1"];
        let armed = ArmedReboot::spawn("m", local(&refuse)).unwrap();
        let err = armed.fire(Duration::from_secs(10)).await.unwrap_err();
        assert!(matches!(err, ExecError::NonZeroExit { status: Some(1), .. }), "{err}");
        assert!(err.to_string().contains("Operation inhibited by \"backup\""), "{err}");
    }

    #[tokio::test]
    async fn a_session_that_ended_says_so() {
        let mut armed = ArmedReboot::spawn("m", Command::new("true")).unwrap();
        // Until it has ended (a sleep alone raced a busy machine).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while armed.child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "`true` did not end");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let err = armed.fire(Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, ExecError::Connection { .. }), "{err}");
    }
}

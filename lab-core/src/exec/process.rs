//! Running a local process with input, a timeout and captured output.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{ExecError, Output};
use crate::redact::redact_text;

/// Runs `command` to the end or until `timeout`, feeding it `stdin`.
/// `machine` and `display` only name things in errors.
pub(crate) async fn run_process(
    machine: &str,
    display: &str,
    mut command: tokio::process::Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<Output, ExecError> {
    command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A timed-out or abandoned command must not outlive its future.
        .kill_on_drop(true);
    let program = command.as_std().get_program().to_string_lossy().into_owned();
    let shown = redact_text(display);
    tracing::debug!(machine, command = %shown, "running");
    let mut child = command.spawn().map_err(|source| ExecError::Spawn {
        machine: machine.to_string(),
        program: program.clone(),
        source,
    })?;
    // Feed input concurrently with reading output, so neither pipe can fill
    // up and block the other.
    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            Some(tokio::spawn(async move {
                // A command that exits without reading its input is not an error.
                let _ = pipe.write_all(&bytes).await;
            }))
        }
        _ => None,
    };
    let result = tokio::time::timeout(timeout, child.wait_with_output()).await;
    if let Some(writer) = writer {
        writer.abort();
    }
    match result {
        Ok(Ok(output)) => Ok(Output { status: output.status.code(), stdout: output.stdout, stderr: output.stderr }),
        Ok(Err(source)) => Err(ExecError::Spawn { machine: machine.to_string(), program, source }),
        Err(_) => {
            Err(ExecError::Timeout { machine: machine.to_string(), command: display.to_string(), after: timeout })
        }
    }
}

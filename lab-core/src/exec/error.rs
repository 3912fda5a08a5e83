//! What can go wrong when lab acts on a machine.

use std::time::Duration;

use crate::redact::redact_text;

/// An action on a machine failed. Every kind names the machine and, where
/// there is one, the command (quoted as the remote shell sees it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// A local program (ssh, nix, the command itself) could not be started.
    #[error("{machine}: cannot start `{program}`: {source}; check that it is installed and on PATH")]
    Spawn {
        /// The machine the action was for.
        machine: String,
        /// The program that could not be started.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The machine could not be reached (or the connection dropped).
    #[error("{machine}: cannot reach the machine to run `{command}`: {}; check that it is up and that `ssh` to it works", redact_text(.message))]
    Connection {
        /// The machine.
        machine: String,
        /// The command that was to run.
        command: String,
        /// ssh's own explanation.
        message: String,
    },
    /// The machine's host key is unknown or changed; lab never accepts it silently.
    #[error("{machine}: host key verification failed for `{command}`: {}; if the machine was reinstalled, verify its new key and update known_hosts (ssh-keygen -R HOST)", redact_text(.message))]
    HostKey {
        /// The machine.
        machine: String,
        /// The command that was to run.
        command: String,
        /// ssh's own explanation.
        message: String,
    },
    /// The command did not finish within its timeout; it was killed.
    #[error("{machine}: `{command}` did not finish within {}; it was stopped", human_duration(*after))]
    Timeout {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The command ran and failed.
    #[error("{machine}: `{command}` failed ({}){}", exit_text(*status), stderr_suffix(stderr))]
    NonZeroExit {
        /// The machine.
        machine: String,
        /// The command.
        command: String,
        /// Its exit code; `None` when a signal ended it.
        status: Option<i32>,
        /// The end of its standard error.
        stderr: String,
    },
    /// The machine did not come back with a new boot id before the deadline.
    #[error("{machine}: did not come back from the reboot in time (boot id before: {old_boot_id}); last: {}", redact_text(.last))]
    BootTimeout {
        /// The machine.
        machine: String,
        /// The boot id it had before the reboot.
        old_boot_id: String,
        /// The last thing observed (an error or the unchanged boot id).
        last: String,
    },
    /// The request itself is unusable (e.g. an empty argv or a host name that looks like an option).
    #[error("{machine}: {}", redact_text(.message))]
    Invalid {
        /// The machine.
        machine: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl ExecError {
    /// The machine the failed action was for.
    pub fn machine(&self) -> &str {
        match self {
            ExecError::Spawn { machine, .. }
            | ExecError::Connection { machine, .. }
            | ExecError::HostKey { machine, .. }
            | ExecError::Timeout { machine, .. }
            | ExecError::NonZeroExit { machine, .. }
            | ExecError::BootTimeout { machine, .. }
            | ExecError::Invalid { machine, .. } => machine,
        }
    }

    /// True when the machine could not be reached at all (as opposed to a
    /// command that ran and failed): connection and host-key failures.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ExecError::Connection { .. } | ExecError::HostKey { .. })
    }
}

fn exit_text(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".into(),
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {}", redact_text(stderr))
    }
}

/// `1.5 s`, `200 ms`: durations as people read them.
pub fn human_duration(d: Duration) -> String {
    if d.as_secs() >= 1 {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{} s", d.as_secs())
        } else {
            format!("{s:.1} s")
        }
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The last lines of a command's output, trimmed, at most `max` characters:
/// enough to say why it failed without flooding a report.
pub fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let skipped: String = text.chars().skip(count - max).collect();
    format!("…{skipped}")
}

//! Executors: the one seam between lab and its machines.
//!
//! Everything lab does to a machine (run a command, copy a closure, read the
//! boot id, reboot, wait for it to come back) goes through [`Executor`], so
//! the orchestrator runs unchanged over ssh ([`SshExecutor`]), on the machine
//! lab runs on ([`LocalExecutor`]), or as a plan ([`DryRunExecutor`]).

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

mod armed;
mod dry_run;
mod error;
mod local;
mod process;
mod quote;
mod ssh;

pub use armed::ArmedReboot;
pub use dry_run::{ActionLog, DryRunAction, DryRunExecutor};
pub use error::{human_duration, tail, ExecError};
pub use local::{hostname, LocalExecutor};
pub use quote::{quote_arg, quote_argv};
pub use ssh::{is_valid_host, is_valid_user, SshExecutor, SshOptions, SshTransport};

/// Default timeout of a [`Cmd`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long one boot-id read may take while waiting for a machine to boot.
const BOOT_POLL_ATTEMPT: Duration = Duration::from_secs(15);
/// Boot-id reads start at most this often while a machine reboots: a
/// machine that is back is noticed within it. A read of a machine that is
/// down costs one refused connection; every millisecond here is added to
/// each machine of a sequential reboot.
const BOOT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Boot-id reads start this often while the machine refuses connections:
/// its network is up and sshd is about to listen, so the wait is nearly
/// over, and a refused connection costs next to nothing.
const BOOT_POLL_REFUSED_INTERVAL: Duration = Duration::from_millis(25);
/// Where Linux publishes the id of the current boot.
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// A command to run on a machine: an argv (never a shell string), a timeout
/// and optional standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// Program and arguments; the program is looked up in the machine's PATH.
    pub argv: Vec<String>,
    /// The command is stopped after this long and fails with [`ExecError::Timeout`].
    pub timeout: Duration,
    /// Bytes fed to its standard input (none: standard input is empty).
    pub stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// A command with the [`DEFAULT_TIMEOUT`] and no input.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd { argv: argv.into_iter().map(Into::into).collect(), timeout: DEFAULT_TIMEOUT, stdin: None }
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the standard input.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// The command as a shell would read it, credentials redacted (for
    /// messages, logs and plans; never for running it).
    pub fn display(&self) -> String {
        quote_argv(&crate::redact::redact_argv(&self.argv))
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit code; `None` when a signal ended it.
    pub status: Option<i32>,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// True on exit code 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// How a closure is copied to a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Let the machine fetch what it can from its own substituters
    /// (binary caches) instead of receiving it from the controller.
    pub substitute_on_destination: bool,
    /// The copy is stopped after this long.
    pub timeout: Duration,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { substitute_on_destination: false, timeout: Duration::from_secs(3600) }
    }
}

/// Acts on one machine. Object-safe, so a run can hold `Arc<dyn Executor>`
/// for machines reached in different ways.
#[async_trait]
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// The name of the machine this executor acts on.
    fn machine(&self) -> &str;

    /// True when the machine is the one this process runs on, so checks and
    /// files can be handled in-process.
    fn is_local(&self) -> bool {
        false
    }

    /// Runs `cmd` and returns its output whatever its exit code; errors only
    /// when it could not run to the end (connection, timeout, spawn).
    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError>;

    /// Runs `cmd`; a non-zero exit is [`ExecError::NonZeroExit`].
    async fn run_ok(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let output = self.run(cmd).await?;
        if output.success() {
            Ok(output)
        } else {
            Err(ExecError::NonZeroExit {
                machine: self.machine().to_string(),
                command: cmd.display(),
                status: output.status,
                stderr: tail(&output.stderr, 400),
            })
        }
    }

    /// Makes the Nix store path `store_path` and its closure present on the machine.
    async fn copy_closure(&self, store_path: &str, options: &CopyOptions) -> Result<(), ExecError>;

    /// The machine's current boot id (changes on every boot).
    async fn boot_id(&self) -> Result<String, ExecError> {
        let output = self.run_ok(&Cmd::new(["cat", BOOT_ID_PATH]).timeout(BOOT_POLL_ATTEMPT)).await?;
        parse_boot_id(self.machine(), &output.stdout)
    }

    /// Starts a reboot and returns without waiting for it; a connection that
    /// drops because the machine goes down is not an error.
    async fn reboot(&self) -> Result<(), ExecError>;

    /// The command that reboots the machine (argv), for callers that run it
    /// another way (behind sudo).
    fn reboot_command(&self) -> Vec<String> {
        vec!["reboot".into()]
    }

    /// Opens, ahead of time, the session a reboot will run in (as root), so
    /// that [`ArmedReboot::fire`] starts it without connection or session
    /// setup. `None`: nothing to prepare; use [`reboot`](Self::reboot).
    async fn arm_reboot(&self) -> Option<ArmedReboot> {
        None
    }

    /// Waits until the machine answers with a boot id other than
    /// `old_boot_id`, polling every 100 ms at most; fails with
    /// [`ExecError::BootTimeout`] at `deadline`, or with
    /// [`ExecError::HostKey`] when the machine was still answering with a
    /// host key ssh does not accept then. Returns the new boot id.
    async fn wait_for_boot(&self, old_boot_id: &str, deadline: Instant) -> Result<String, ExecError> {
        poll_new_boot(self, old_boot_id, deadline).await
    }

    /// Releases what the executor holds for the machine (the multiplexed
    /// ssh connection); it stays usable and reconnects if used again.
    async fn close(&self) {}
}

/// Reads a boot id from `cat`'s output.
fn parse_boot_id(machine: &str, stdout: &[u8]) -> Result<String, ExecError> {
    let id = String::from_utf8_lossy(stdout).trim().to_string();
    if id.is_empty() || id.contains(char::is_whitespace) {
        return Err(ExecError::Invalid {
            machine: machine.to_string(),
            message: format!("{BOOT_ID_PATH} held {id:?}, not a boot id"),
        });
    }
    Ok(id)
}

const NO_ANSWER: &str = "no answer yet";

/// The polling loop behind [`Executor::wait_for_boot`].
pub async fn poll_new_boot<E: Executor + ?Sized>(
    executor: &E,
    old_boot_id: &str,
    deadline: Instant,
) -> Result<String, ExecError> {
    let mut last = NO_ANSWER.to_string();
    // The last answer, when it was a host key ssh refused.
    let mut refused_key = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            if let Some(e) = refused_key {
                return Err(e);
            }
            return Err(ExecError::BootTimeout {
                machine: executor.machine().to_string(),
                old_boot_id: old_boot_id.to_string(),
                last,
            });
        }
        // The attempt itself must not run past the deadline either.
        let started = now;
        match tokio::time::timeout(deadline - now, executor.boot_id()).await {
            Ok(Ok(id)) if id != old_boot_id => return Ok(id),
            Ok(Ok(id)) => (last, refused_key) = (format!("still up with the old boot id {id}"), None),
            // Waited out, not failed at once: an initrd's own sshd (remote
            // disk unlock) answers with another key until the system is up.
            // Never accepted; if it is still the answer at the deadline,
            // that is the error.
            Ok(Err(e @ ExecError::HostKey { .. })) => (last, refused_key) = (e.to_string(), Some(e)),
            Ok(Err(e)) => (last, refused_key) = (e.to_string(), None),
            // The deadline cut this attempt short: that says nothing new,
            // so the last real observation stays what the error reports.
            Err(_) if last == NO_ANSWER => last = "the boot id read did not finish before the deadline".into(),
            Err(_) => {}
        }
        let interval =
            if last.contains("Connection refused") { BOOT_POLL_REFUSED_INTERVAL } else { BOOT_POLL_INTERVAL };
        tokio::time::sleep_until((started + interval).min(deadline)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// One scripted answer.
    type Answer = fn() -> Result<Output, ExecError>;

    /// Answers boot-id reads from a script, one entry per read; the last repeats.
    #[derive(Debug)]
    struct Scripted(Mutex<Vec<Answer>>);

    #[async_trait]
    impl Executor for Scripted {
        fn machine(&self) -> &str {
            "m"
        }
        async fn run(&self, _cmd: &Cmd) -> Result<Output, ExecError> {
            let mut script = self.0.lock().unwrap();
            let next = if script.len() > 1 { script.remove(0) } else { script[0] };
            next()
        }
        async fn copy_closure(&self, _: &str, _: &CopyOptions) -> Result<(), ExecError> {
            Ok(())
        }
        async fn reboot(&self) -> Result<(), ExecError> {
            Ok(())
        }
    }

    fn refused() -> Result<Output, ExecError> {
        Err(ExecError::Connection { machine: "m".into(), command: "cat".into(), message: "Connection refused".into() })
    }

    fn changed_key() -> Result<Output, ExecError> {
        Err(ExecError::HostKey {
            machine: "m".into(),
            command: "cat".into(),
            message: "REMOTE HOST IDENTIFICATION HAS CHANGED".into(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_host_key_still_refused_at_the_deadline_is_the_error() {
        let exec = Scripted(Mutex::new(vec![refused, refused, changed_key]));
        let started = Instant::now();
        let err = exec.wait_for_boot("old", started + Duration::from_secs(60)).await.unwrap_err();
        assert!(matches!(err, ExecError::HostKey { .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_secs(60), "gave up after {:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn an_initrd_answering_with_its_own_key_is_waited_out() {
        let new = || Ok(Output { status: Some(0), stdout: b"new-id\n".to_vec(), stderr: vec![] });
        let exec = Scripted(Mutex::new(vec![refused, changed_key, changed_key, refused, new]));
        assert_eq!(exec.wait_for_boot("old", Instant::now() + Duration::from_secs(60)).await.unwrap(), "new-id");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusing_machine_is_waited_for_until_the_deadline() {
        let exec = Scripted(Mutex::new(vec![refused]));
        let started = Instant::now();
        let err = exec.wait_for_boot("old", started + Duration::from_secs(30)).await.unwrap_err();
        assert!(matches!(err, ExecError::BootTimeout { .. }), "{err}");
        assert!(err.to_string().contains("Connection refused"), "{err}");
        assert!(started.elapsed() >= Duration::from_secs(30));
        let new = || Ok(Output { status: Some(0), stdout: b"new-id\n".to_vec(), stderr: vec![] });
        let exec = Scripted(Mutex::new(vec![refused, new]));
        assert_eq!(exec.wait_for_boot("old", Instant::now() + Duration::from_secs(30)).await.unwrap(), "new-id");
    }
}

//! Machines reached with the OpenSSH client.
//!
//! lab runs the system `ssh`, so ~/.ssh/config, ssh-agent, ProxyJump and
//! known_hosts work as they do for the user. Host keys are checked as ssh
//! always checks them: lab never sets `StrictHostKeyChecking=no`, and
//! `BatchMode=yes` turns every question ssh would ask into a failure.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use super::armed::ARMED_REBOOT_SCRIPT;
use super::process::run_process;
use super::{quote_argv, tail, ArmedReboot, Cmd, CopyOptions, ExecError, Executor, Output};
use crate::metadata::Machine;

/// How long a reboot command may take before lab stops waiting for its answer.
const REBOOT_COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long closing a multiplexed connection may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// ssh's exit code for its own failures (connection, authentication, host key).
const SSH_FAILURE: i32 = 255;

/// Settings for every ssh connection of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOptions {
    /// The ssh client to run.
    pub program: PathBuf,
    /// The nix to run for `nix copy`.
    pub nix_program: PathBuf,
    /// An ssh config file used instead of ~/.ssh/config (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// Extra `-o` options, `Key=Value`; they take precedence over lab's defaults
    /// and over the config files.
    pub options: Vec<String>,
    /// One multiplexed connection per machine for the whole run.
    pub multiplex: bool,
    /// What runs on the machine to reboot it. By default `systemctl reboot
    /// --check-inhibitors=yes`: a held block inhibitor (a backup, an
    /// update) refuses the reboot with its own message, which lab reports
    /// at once. Without the flag systemd lets root pass inhibitors when not
    /// on a terminal (as lab is) up to systemd 256; 257 enforces them for
    /// root too.
    pub reboot_command: Vec<String>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            program: "ssh".into(),
            nix_program: "nix".into(),
            config_file: None,
            options: Vec::new(),
            multiplex: true,
            reboot_command: ["systemctl", "reboot", "--check-inhibitors=yes"].map(String::from).to_vec(),
        }
    }
}

/// The ssh side of a run: options plus a private directory for the control
/// sockets of the multiplexed connections. Make one per run, an executor per
/// machine from it, and [`close`](SshTransport::close) it at the end (it is
/// also closed, synchronously, when the last clone is dropped).
#[derive(Debug, Clone)]
pub struct SshTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: SshOptions,
    // Field order matters: the sockets are closed in Drop before the
    // directory holding them is removed.
    sockets: Mutex<Vec<PathBuf>>,
    next_socket: AtomicUsize,
    control_dir: Option<tempfile::TempDir>,
}

impl SshTransport {
    /// A transport with `options`; creates the private control directory
    /// (mode 0700) when multiplexing.
    pub fn new(options: SshOptions) -> std::io::Result<Self> {
        let control_dir = if options.multiplex {
            // Unix socket paths are limited to about 104 bytes, so the
            // directory lives at a short path whatever TMPDIR says.
            let tmp = std::env::temp_dir();
            let base = if tmp.as_os_str().len() <= 40 { tmp } else { PathBuf::from("/tmp") };
            Some(tempfile::Builder::new().prefix("lab-ssh-").tempdir_in(base)?)
        } else {
            None
        };
        Ok(SshTransport {
            inner: Arc::new(Inner {
                options,
                sockets: Mutex::new(Vec::new()),
                next_socket: AtomicUsize::new(0),
                control_dir,
            }),
        })
    }

    /// The options this transport was made with.
    pub fn options(&self) -> &SshOptions {
        &self.inner.options
    }

    /// An executor for `machine`, reached at its `targetHost` (else hostname,
    /// else name), `targetUser` and `targetPort`.
    pub fn executor(&self, machine: &Machine) -> Result<SshExecutor, ExecError> {
        let port = machine.metadata.target_port;
        let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| ExecError::Invalid {
            machine: machine.name.clone(),
            message: format!("targetPort {port} is not a port; use 1-65535"),
        })?;
        self.executor_for(&machine.name, machine.target_host(), &machine.metadata.target_user, port)
    }

    /// An executor for a machine named `machine` at `user@host:port`.
    pub fn executor_for(&self, machine: &str, host: &str, user: &str, port: u16) -> Result<SshExecutor, ExecError> {
        let invalid = |message: String| ExecError::Invalid { machine: machine.to_string(), message };
        // Host and user reach ssh and nix's store URL as arguments; refusing
        // anything but name characters keeps them from being read as options
        // or URL parts.
        if !is_host(host) {
            return Err(invalid(format!("target host {host:?} is not a host name or address")));
        }
        if !is_user(user) {
            return Err(invalid(format!("target user {user:?} is not a user name")));
        }
        if port == 0 {
            return Err(invalid("target port 0 is not a port".into()));
        }
        let control_path = self.inner.control_dir.as_ref().map(|dir| {
            let n = self.inner.next_socket.fetch_add(1, Ordering::Relaxed);
            let path = dir.path().join(n.to_string());
            self.inner.sockets.lock().unwrap_or_else(PoisonError::into_inner).push(path.clone());
            path
        });
        Ok(SshExecutor {
            transport: self.clone(),
            machine: machine.to_string(),
            host: host.to_string(),
            user: user.to_string(),
            port,
            control_path,
        })
    }

    /// Closes every multiplexed connection of this transport.
    pub async fn close(&self) {
        let sockets = self.inner.sockets.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let closing = sockets.iter().map(|socket| close_master(&self.inner.options.program, socket));
        futures_util::future::join_all(closing).await;
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort for runs that ended without close(): a leftover master
        // would otherwise linger until ControlPersist expires.
        let sockets = self.sockets.get_mut().unwrap_or_else(PoisonError::into_inner);
        for socket in sockets.iter().filter(|s| s.exists()) {
            let _ = std::process::Command::new(&self.options.program)
                .args(close_args(socket))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn close_args(socket: &Path) -> Vec<OsString> {
    // -F /dev/null: closing talks to the local socket only; no config applies.
    let mut control = OsString::from("ControlPath=");
    control.push(socket);
    vec!["-F".into(), "/dev/null".into(), "-o".into(), control, "-O".into(), "exit".into(), "lab-control".into()]
}

async fn close_master(program: &Path, socket: &Path) {
    if !socket.exists() {
        return;
    }
    let mut command = tokio::process::Command::new(program);
    command.args(close_args(socket));
    let _ = run_process("ssh", "ssh -O exit", command, None, CLOSE_TIMEOUT).await;
    // The master answers before it has gone; a command started meanwhile
    // would attach to the dying master. Wait (bounded) for its socket to go.
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    while socket.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when `host` can be handed to ssh and to nix's `ssh://` store URL as
/// a host: at most 253 characters, letters, digits, `.`, `-`, `_`, `:` and
/// `%` (IPv6 with a zone), not starting with `-` (ssh would read it as an
/// option).
pub fn is_valid_host(host: &str) -> bool {
    is_host(host)
}

/// True when `user` can be handed to ssh and nix as a user name: letters,
/// digits, `.`, `-` and `_`, not starting with `-`.
pub fn is_valid_user(user: &str) -> bool {
    is_user(user)
}

fn is_host(host: &str) -> bool {
    // 253: the longest name DNS can resolve.
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'))
}

fn is_user(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// One machine over ssh.
#[derive(Debug, Clone)]
pub struct SshExecutor {
    transport: SshTransport,
    machine: String,
    host: String,
    user: String,
    port: u16,
    control_path: Option<PathBuf>,
}

impl SshExecutor {
    /// `user@host` as ssh and nix see it.
    pub fn destination(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    /// The `ssh://` store URL `nix copy` copies to. An IPv6 literal goes in
    /// brackets, its zone's `%` written `%25` (RFC 6874): nix 2.31 and later
    /// refuse it bare (NixOS/nix#13937, #15996), and older nix (2.4 on)
    /// takes the brackets off again before calling ssh.
    pub fn store_url(&self) -> String {
        match self.host.contains(':') {
            true => format!("ssh://{}@[{}]", self.user, self.host.replace('%', "%25")),
            false => format!("ssh://{}", self.destination()),
        }
    }

    /// The control socket of this machine's multiplexed connection, if multiplexing.
    pub fn control_path(&self) -> Option<&Path> {
        self.control_path.as_deref()
    }

    /// The ssh argv up to (not including) the remote command: options, then
    /// `-- host`. Public so plans can show the exact command.
    pub fn ssh_argv(&self) -> Vec<OsString> {
        let options = &self.transport.inner.options;
        let mut args: Vec<OsString> = vec![options.program.clone().into()];
        if let Some(file) = &options.config_file {
            args.push("-F".into());
            args.push(file.into());
        }
        // For every -o, ssh keeps the first value it sees: BatchMode comes
        // first so nothing can make ssh prompt; the user's options come
        // before lab's defaults so they win.
        let mut opt = |value: &str| {
            args.push("-o".into());
            args.push(value.into());
        };
        opt("BatchMode=yes");
        for o in &options.options {
            opt(o);
        }
        opt("ConnectTimeout=10");
        // A machine that vanishes (reboot, cable) is noticed in about 15 s
        // instead of the TCP timeout.
        opt("ServerAliveInterval=5");
        opt("ServerAliveCountMax=3");
        if let Some(path) = &self.control_path {
            opt("ControlMaster=auto");
            opt(&format!("ControlPath={}", path.display()));
            // A master left behind by a crashed run exits on its own.
            opt("ControlPersist=60");
        }
        args.extend(["-T".into(), "-p".into(), self.port.to_string().into(), "-l".into(), self.user.clone().into()]);
        args.push("--".into());
        args.push(self.host.clone().into());
        args
    }

    fn classify_ssh_failure(&self, command: &str, output: &Output) -> ExecError {
        let stderr = tail(&output.stderr, 600);
        if is_host_key_failure(&stderr) {
            ExecError::HostKey { machine: self.machine.clone(), command: command.to_string(), message: stderr }
        } else {
            ExecError::Connection { machine: self.machine.clone(), command: command.to_string(), message: stderr }
        }
    }

    /// NIX_SSHOPTS for `nix copy`: port, config and the user's options. nix
    /// splits it on white space, so values holding spaces cannot pass.
    fn nix_sshopts(&self) -> Result<String, ExecError> {
        let options = &self.transport.inner.options;
        let mut words = vec!["-p".to_string(), self.port.to_string(), "-o".into(), "BatchMode=yes".into()];
        if let Some(file) = &options.config_file {
            words.push("-F".into());
            words.push(file.display().to_string());
        }
        for o in &options.options {
            words.push("-o".into());
            words.push(o.clone());
        }
        if let Some(bad) = words.iter().find(|w| w.contains(char::is_whitespace)) {
            return Err(ExecError::Invalid {
                machine: self.machine.clone(),
                message: format!("nix copy cannot pass the ssh option {bad:?}: NIX_SSHOPTS is split on white space"),
            });
        }
        Ok(words.join(" "))
    }
}

fn is_host_key_failure(stderr: &str) -> bool {
    // Only ssh's refusals: "… host key for …" also appears in warnings on
    // connections that went through (CheckHostIP).
    ["Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED", "No matching host key"]
        .iter()
        .any(|needle| stderr.contains(needle))
}

#[async_trait]
impl Executor for SshExecutor {
    fn machine(&self) -> &str {
        &self.machine
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        if cmd.argv.is_empty() || cmd.argv.iter().any(|a| a.contains('\0')) {
            return Err(ExecError::Invalid {
                machine: self.machine.clone(),
                message: format!(
                    "cannot run {:?}: empty, or an argument holds a NUL byte",
                    crate::redact::redact_argv(&cmd.argv)
                ),
            });
        }
        let display = cmd.display();
        let argv = self.ssh_argv();
        let mut command = tokio::process::Command::new(&argv[0]);
        // One argument for the remote command: ssh would join several with
        // spaces anyway, and the remote shell parses it back into the argv.
        command.args(&argv[1..]).arg(quote_argv(&cmd.argv));
        let output = run_process(&self.machine, &display, command, cmd.stdin.as_deref(), cmd.timeout).await?;
        if output.status == Some(SSH_FAILURE) {
            return Err(self.classify_ssh_failure(&display, &output));
        }
        Ok(output)
    }

    async fn copy_closure(&self, store_path: &str, options: &CopyOptions) -> Result<(), ExecError> {
        let program = &self.transport.inner.options.nix_program;
        let mut argv: Vec<String> = vec![
            program.display().to_string(),
            "--extra-experimental-features".into(),
            "nix-command".into(),
            "copy".into(),
            "--to".into(),
            self.store_url(),
        ];
        if options.substitute_on_destination {
            argv.push("--substitute-on-destination".into());
        }
        argv.push(store_path.to_string());
        let display = quote_argv(&argv);
        let mut command = tokio::process::Command::new(&argv[0]);
        command.args(&argv[1..]).env("NIX_SSHOPTS", self.nix_sshopts()?);
        let output = run_process(&self.machine, &display, command, None, options.timeout).await?;
        if output.success() {
            return Ok(());
        }
        let stderr = tail(&output.stderr, 600);
        if is_host_key_failure(&stderr) {
            return Err(ExecError::HostKey { machine: self.machine.clone(), command: display, message: stderr });
        }
        Err(ExecError::NonZeroExit { machine: self.machine.clone(), command: display, status: output.status, stderr })
    }

    /// Runs the reboot command; its connection dropping (or hanging) as the
    /// machine goes down counts as success. Read the boot id before, and
    /// [`wait_for_boot`](Executor::wait_for_boot) after: that is what proves
    /// the reboot happened.
    async fn reboot(&self) -> Result<(), ExecError> {
        let cmd = Cmd::new(self.transport.inner.options.reboot_command.clone()).timeout(REBOOT_COMMAND_TIMEOUT);
        let result = self.run_ok(&cmd).await;
        // The multiplexed connection dies with the machine; drop it now so
        // the next command opens a fresh one.
        self.close().await;
        match result {
            Ok(_) | Err(ExecError::Connection { .. } | ExecError::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn reboot_command(&self) -> Vec<String> {
        self.transport.inner.options.reboot_command.clone()
    }

    async fn arm_reboot(&self) -> Option<ArmedReboot> {
        let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), ARMED_REBOOT_SCRIPT.into(), "lab-reboot".into()];
        argv.extend(self.transport.inner.options.reboot_command.iter().cloned());
        let ssh = self.ssh_argv();
        let mut command = tokio::process::Command::new(&ssh[0]);
        command.args(&ssh[1..]).arg(quote_argv(&argv));
        ArmedReboot::spawn(&self.machine, command).ok()
    }

    async fn close(&self) {
        if let Some(path) = &self.control_path {
            close_master(&self.transport.inner.options.program, path).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_store_urls_are_bracketed() {
        let transport = SshTransport::new(SshOptions::default()).unwrap();
        let url = |host: &str| transport.executor_for("m", host, "root", 22).unwrap().store_url();
        assert_eq!(url("2001:db8::1"), "ssh://root@[2001:db8::1]");
        assert_eq!(url("fe80::1%eth0"), "ssh://root@[fe80::1%25eth0]");
        assert_eq!(url("web.lab"), "ssh://root@web.lab");
        assert_eq!(url("10.0.0.1"), "ssh://root@10.0.0.1");
    }

    #[test]
    fn argv_puts_batch_mode_first_user_options_before_defaults_and_host_last() {
        let transport = SshTransport::new(SshOptions {
            options: vec!["ConnectTimeout=3".into()],
            config_file: Some("/etc/lab/ssh_config".into()),
            ..SshOptions::default()
        })
        .unwrap();
        let exec = transport.executor_for("web", "web.lan", "deploy", 2222).unwrap();
        let argv: Vec<String> = exec.ssh_argv().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let text = argv.join(" ");
        assert!(
            text.starts_with("ssh -F /etc/lab/ssh_config -o BatchMode=yes -o ConnectTimeout=3 -o ConnectTimeout=10")
        );
        assert!(text.ends_with("-T -p 2222 -l deploy -- web.lan"), "{text}");
        assert!(text.contains("-o ControlMaster=auto -o ControlPath=/"));
        assert!(!text.contains("StrictHostKeyChecking"));
        // The control socket path stays well under the unix socket limit.
        let control = argv.iter().find(|a| a.starts_with("ControlPath=")).unwrap();
        assert!(control.len() - "ControlPath=".len() < 60, "{control}");
    }

    #[test]
    fn hostile_destinations_are_refused() {
        let transport = SshTransport::new(SshOptions { multiplex: false, ..SshOptions::default() }).unwrap();
        for host in ["-oProxyCommand=touch /tmp/x", "a b", "host;reboot", "", "h/../x", "user@host"] {
            assert!(transport.executor_for("m", host, "root", 22).is_err(), "{host}");
        }
        assert!(transport.executor_for("m", "root", "-l", 22).is_err());
        assert!(transport.executor_for("m", "::1", "root", 22).is_ok());
        assert!(transport.executor_for("m", "fe80::1%eth0", "root", 22).is_ok());
    }

    #[test]
    fn nix_sshopts_refuses_white_space() {
        let transport =
            SshTransport::new(SshOptions { options: vec!["ProxyCommand=nc %h %p".into()], ..SshOptions::default() })
                .unwrap();
        let exec = transport.executor_for("m", "h", "root", 22).unwrap();
        assert!(exec.nix_sshopts().is_err());
    }
}

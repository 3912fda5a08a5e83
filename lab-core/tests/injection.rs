//! No shell injection, one test per path a fleet value travels to a
//! process, and no credential in what lab prints. Each hostile value would
//! create a canary file if any shell read it as code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use lab_core::exec::{
    quote_argv, Cmd, CopyOptions, ExecError, Executor, LocalExecutor, Output, SshOptions, SshTransport,
};
use lab_core::health::{HttpClients, MachineProber, Prober};
use lab_core::metadata::{parse_machine, validate, HealthCheck, Machine};
use serde_json::json;

/// Runs each command the way sshd does on the machine: the argv quoted into
/// one line (as the ssh executor sends it) and read by `sh -c`, with `bin`
/// first on PATH.
#[derive(Debug)]
struct RemoteShell {
    bin: PathBuf,
}

#[async_trait]
impl Executor for RemoteShell {
    fn machine(&self) -> &str {
        "remote"
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        let path = format!("{}:/usr/bin:/bin", self.bin.display());
        let out = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(quote_argv(&cmd.argv))
            .env("PATH", path)
            .output()
            .await
            .unwrap();
        Ok(Output { status: out.status.code(), stdout: out.stdout, stderr: out.stderr })
    }

    async fn copy_closure(&self, _: &str, _: &CopyOptions) -> Result<(), ExecError> {
        unreachable!()
    }

    async fn reboot(&self) -> Result<(), ExecError> {
        unreachable!()
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn machine(value: serde_json::Value) -> Machine {
    parse_machine("web", value, None).unwrap()
}

#[tokio::test]
async fn check_urls_and_hosts_reach_the_machine_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let c = canary.display();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // curl and bash as found on a machine, but instant: curl says what it got.
    script(&bin, "curl", "for a; do last=\"$a\"; done; echo \"curl: (7) Failed to connect to $last\" >&2; exit 7");
    let checks = json!([
        { "type": "http", "url": format!("http://127.0.0.1:9/$(touch {c})`touch {c}`;touch {c}") },
        { "type": "tcp", "port": 9, "host": format!("$(touch {c})") },
        { "type": "tcp", "port": 9, "host": format!("x;touch {c}") },
    ]);
    let m = machine(json!({ "role": "web", "rebootOrder": 0, "healthChecks": checks }));
    let prober = MachineProber::new(&m, Arc::new(RemoteShell { bin }), HttpClients::default());
    for check in &m.metadata.health_checks {
        let attempt = prober.probe(check).await;
        assert!(!attempt.passed, "{attempt:?}");
    }
    let http = prober.probe(&m.metadata.health_checks[0]).await;
    assert!(
        http.message.contains(&format!("$(touch {c})`touch {c}`;touch {c}")),
        "curl got the url verbatim: {http:?}"
    );
    assert!(!canary.exists(), "a url or host ran as a command");
}

#[tokio::test]
async fn remote_commands_and_hostile_destinations_never_reach_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let c = canary.display();
    let log = dir.path().join("ssh.log");
    // ssh as sshd would run it: the last argument read by the remote shell.
    let ssh = script(
        dir.path(),
        "ssh",
        &format!("printf '%s\\n' \"$@\" >> {}; for a; do last=\"$a\"; done; exec sh -c \"$last\"", log.display()),
    );
    let transport = SshTransport::new(SshOptions { program: ssh, multiplex: false, ..SshOptions::default() }).unwrap();
    let exec = transport.executor_for("web", "web.lan", "deploy", 22).unwrap();
    let argv =
        ["printf", "%s|", format!("$(touch {c})").as_str(), &format!("`touch {c}`"), "a;b", "it's"].map(String::from);
    let out = exec.run_ok(&Cmd::new(argv.clone())).await.unwrap();
    assert_eq!(out.stdout_text(), format!("$(touch {c})|`touch {c}`|a;b|it's|"));
    let sent = std::fs::read_to_string(&log).unwrap();
    assert!(sent.ends_with(&format!("--\nweb.lan\n{}\n", quote_argv(&argv))), "{sent}");

    // A target that would be an ssh option, or hold a user or shell
    // syntax, is refused before ssh starts.
    std::fs::remove_file(&log).unwrap();
    for (host, user) in [
        (format!("-oProxyCommand=touch {c}"), "root"),
        (format!("$(touch {c})"), "root"),
        ("web.lan".to_string(), "-oProxyCommand=x"),
        ("web.lan".to_string(), "root@evil"),
    ] {
        let m = machine(json!({ "role": "web", "rebootOrder": 0, "targetHost": host, "targetUser": user }));
        let err = transport.executor(&m).unwrap_err();
        assert!(matches!(err, ExecError::Invalid { .. }), "{err}");
        assert!(err.to_string().starts_with("web: target "), "{err}");
        assert!(!validate("web", &m.metadata).is_empty(), "lab check says so first");
    }
    assert!(!log.exists(), "ssh never started");
    assert!(!canary.exists());
}

#[tokio::test]
async fn nix_copy_gets_its_destination_as_one_argument() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("nix.log");
    let nix =
        script(dir.path(), "nix", &format!("printf '%s\\n' \"$@\" \"NIX_SSHOPTS=$NIX_SSHOPTS\" > {}", log.display()));
    let options = SshOptions {
        nix_program: nix,
        multiplex: false,
        options: vec!["Compression=yes".into()],
        ..Default::default()
    };
    let transport = SshTransport::new(options).unwrap();
    let m = machine(json!({ "role": "web", "rebootOrder": 0, "targetHost": "fe80::1%eth0", "targetUser": "deploy",
                            "targetPort": 2222 }));
    transport.executor(&m).unwrap().copy_closure("/nix/store/abc-system", &CopyOptions::default()).await.unwrap();
    let argv = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        argv.lines().skip(3).collect::<Vec<_>>(),
        [
            "--to",
            "ssh://deploy@[fe80::1%25eth0]",
            "/nix/store/abc-system",
            "NIX_SSHOPTS=-p 2222 -o BatchMode=yes -o Compression=yes"
        ]
    );
}

#[tokio::test]
async fn credentials_are_redacted_wherever_lab_shows_a_url_or_command() {
    let secret_url = "https://ops:hunter2@web.lan/health?token=abc123";
    let m = machine(json!({ "role": "web", "rebootOrder": 0, "healthChecks": [
        { "type": "http", "url": secret_url },
        { "type": "command", "command": "curl -fsS -H 'Authorization: Bearer abc123' -u ops:hunter2 https://web.lan/" },
        { "type": "http", "url": "ftp://ops:hunter2@nas/x" },
    ] }));
    let clean = |text: &str| !text.contains("hunter2") && !text.contains("abc123");
    let checks = &m.metadata.health_checks;
    assert_eq!(checks[0].label(), "http https://ops:***@web.lan/health?token=***");
    assert_eq!(checks[1].label(), "command curl -fsS -H 'Authorization: *** ***' -u ops:*** https://web.lan/");
    for problem in validate("web", &m.metadata) {
        assert!(clean(&problem.to_string()), "{problem}");
    }

    // What a command printed, and the command itself, in an exec error.
    let local = LocalExecutor::new("web");
    let cmd = Cmd::new(["sh", "-c", "echo \"GET $0 failed\" >&2; exit 3", secret_url]);
    let err = local.run_ok(&cmd).await.unwrap_err().to_string();
    assert!(clean(&err) && err.contains("https://ops:***@web.lan/health?token=***"), "{err}");
    let cmd = Cmd::new(["curl", "--header", "X-Api-Key: abc123", "--password", "hunter2", secret_url]);
    assert!(clean(&cmd.display()), "{}", cmd.display());

    // A health report: the label and what the probe observed.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    script(&bin, "curl", "for a; do last=\"$a\"; done; echo \"curl: (22) $last: 401\" >&2; exit 22");
    let prober = MachineProber::new(&m, Arc::new(RemoteShell { bin }), HttpClients::default());
    let attempt = prober.probe(&checks[0]).await;
    assert!(clean(&attempt.message) && attempt.message.contains("ops:***@web.lan"), "{attempt:?}");
    let report = lab_core::health::CheckResult::new("web", 0, &checks[0], attempt);
    assert!(clean(&serde_json::to_string(&report).unwrap()));
    let command = HealthCheck::Command { command: format!("echo {secret_url}; false"), common: Default::default() };
    let attempt = prober.probe(&command).await;
    assert!(clean(&attempt.message) && attempt.message.contains("ops:***@"), "{attempt:?}");
}

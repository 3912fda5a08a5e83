//! The ssh executor and target-side checks against real sshd test hosts.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use lab_core::exec::{Cmd, CopyOptions, ExecError, Executor, SshExecutor, SshOptions, SshTransport};
use lab_core::health::{check_once, wait_healthy, HttpClients, MachineProber, Via};
use lab_core::metadata::parse_machine;
use lab_testkit::http::{Behaviour, HttpServer};
use lab_testkit::sshd::{SshLab, TestHost};
use tokio::time::Instant;

/// Every test is bounded, whatever ssh does.
const TEST_BOUND: Duration = Duration::from_secs(90);

fn transport(lab: &SshLab) -> SshTransport {
    SshTransport::new(SshOptions { config_file: Some(lab.ssh_config.clone()), ..SshOptions::default() }).unwrap()
}

fn executor(transport: &SshTransport, host: &TestHost) -> SshExecutor {
    transport.executor_for(&host.name, &host.addr.ip().to_string(), "root", host.addr.port()).unwrap()
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(TEST_BOUND, f).await.expect("test exceeded its time bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_commands_and_the_remote_shell_sees_the_exact_argv() {
    let lab = SshLab::new();
    let host = lab.host("alpha");
    let transport = transport(&lab);
    let exec = executor(&transport, &host);
    bounded(async {
        let marker = host.dir.join("pwned");
        let args = [
            "",
            "two words",
            "it's \"quoted\"",
            "a;b && c | d > e",
            &format!("$(touch {}) `touch {}` $HOME", marker.display(), marker.display()),
            "line1\nline2",
            "tab\there",
            "back\\slash",
            "ünïcødé ✓",
            "*",
            "~",
            "-n",
            "'",
        ];
        let mut argv = vec!["printf", "%s\\0"];
        argv.extend(args);
        let output = exec.run_ok(&Cmd::new(argv)).await.unwrap();
        let got: Vec<String> = output.stdout_text().split_terminator('\0').map(String::from).collect();
        assert_eq!(got, args);
        assert!(!marker.exists(), "a command substitution ran on the remote side");

        // And written by a program on the remote side, not just echoed.
        let file = host.dir.join("argv");
        let mut argv = vec!["sh", "-c", "for a; do printf '%s\\0' \"$a\"; done > \"$0\""];
        let file_text = file.display().to_string();
        argv.push(&file_text);
        argv.extend(args);
        exec.run_ok(&Cmd::new(argv)).await.unwrap();
        let written = std::fs::read_to_string(&file).unwrap();
        assert_eq!(written.split_terminator('\0').collect::<Vec<_>>(), args);

        // Standard input reaches the command.
        let output = exec.run_ok(&Cmd::new(["cat"]).stdin("from stdin\n")).await.unwrap();
        assert_eq!(output.stdout_text(), "from stdin\n");
    })
    .await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_timeouts_and_multiplexing() {
    let lab = SshLab::new();
    let host = lab.host("beta");
    let transport = transport(&lab);
    let exec = executor(&transport, &host);
    bounded(async {
        let failing = Cmd::new(["sh", "-c", "echo oops >&2; exit 3"]);
        let output = exec.run(&failing).await.unwrap();
        assert_eq!(output.status, Some(3));
        match exec.run_ok(&failing).await.unwrap_err() {
            ExecError::NonZeroExit { machine, command, status, stderr } => {
                assert_eq!((machine.as_str(), status, stderr.as_str()), ("beta", Some(3), "oops"));
                assert_eq!(command, "sh -c 'echo oops >&2; exit 3'");
            }
            other => panic!("{other}"),
        }

        // The first command opened the machine's multiplexed connection.
        let socket = exec.control_path().unwrap().to_path_buf();
        assert!(socket.exists());

        let start = Instant::now();
        let err = exec.run(&Cmd::new(["sleep", "30"]).timeout(Duration::from_secs(1))).await.unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }), "{err}");
        // Stopped at its timeout, not when `sleep 30` ended (a bound against
        // the hang, with room for a busy machine; not a measurement).
        assert!(start.elapsed() < Duration::from_secs(25), "{:?}", start.elapsed());
        assert_eq!(err.to_string(), "beta: `sleep 30` did not finish within 1 s; it was stopped");

        // The connection survives a killed command, and closes at the end.
        exec.run_ok(&Cmd::new(["true"])).await.unwrap();
        transport.close().await;
        assert!(!socket.exists());
        // ...and reopens if used again.
        exec.run_ok(&Cmd::new(["true"])).await.unwrap();
        assert!(socket.exists());
    })
    .await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_hosts_and_changed_host_keys_are_typed_errors() {
    let lab = SshLab::new();
    let host = lab.host("gamma");
    let transport = transport(&lab);
    bounded(async {
        let port = lab_testkit::http::closed_port(Ipv4Addr::LOCALHOST);
        let nowhere = transport.executor_for("nowhere", "127.0.0.1", "root", port).unwrap();
        let err = nowhere.run(&Cmd::new(["true"])).await.unwrap_err();
        assert!(matches!(err, ExecError::Connection { .. }), "{err}");
        assert!(err.is_unreachable());
        let text = err.to_string();
        assert!(text.starts_with("nowhere: cannot reach the machine to run `true`"), "{text}");
        assert!(text.contains("Connection refused"), "{text}");

        host.pin_wrong_key();
        let exec = executor(&transport, &host);
        let err = exec.run(&Cmd::new(["true"])).await.unwrap_err();
        assert!(matches!(err, ExecError::HostKey { .. }), "{err}");
        assert!(err.to_string().contains("ssh-keygen -R"), "{err}");
        // nix copy goes through the same host-key check.
        let err = exec.copy_closure("/nix/store/does-not-matter", &CopyOptions::default()).await.unwrap_err();
        assert!(matches!(err, ExecError::HostKey { .. } | ExecError::NonZeroExit { .. }), "{err}");
    })
    .await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_id_reboot_and_wait_for_boot() {
    let lab = SshLab::new();
    let host = lab.host_with_boot_id("delta", "boot-one");
    // The stand-in for `reboot`: records the request and drops the session
    // the way a going-down machine does.
    // lab's reboot command is `systemctl reboot --check-inhibitors=yes`:
    // the stand-in answers to that name as well, so the controller's own
    // systemctl is never asked.
    for name in ["reboot", "systemctl"] {
        let bin = host.dir.join("bin").join(name);
        std::fs::write(&bin, "#!/bin/sh\ntouch \"$(dirname \"$0\")/../reboot-requested\"\nkill -9 $PPID\n").unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let transport = transport(&lab);
    let exec = executor(&transport, &host);
    let host = Arc::new(std::sync::Mutex::new(host));
    bounded(async {
        assert_eq!(exec.boot_id().await.unwrap(), "boot-one");
        exec.reboot().await.unwrap();
        let dir = host.lock().unwrap().dir.clone();
        assert!(dir.join("reboot-requested").exists());

        // Still the old boot: waiting fails at the deadline, saying so.
        // Long enough for a fresh ssh connection on a loaded machine.
        let err = exec.wait_for_boot("boot-one", Instant::now() + Duration::from_secs(8)).await.unwrap_err();
        assert!(matches!(err, ExecError::BootTimeout { .. }), "{err}");
        assert!(err.to_string().contains("still up with the old boot id boot-one"), "{err}");

        // The host goes down for a second and comes back with a new boot id.
        let rebooting = host.clone();
        let reboot = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            rebooting.lock().unwrap().reboot("boot-two", Duration::from_secs(1));
        });
        let start = Instant::now();
        // The deadline only stops a hang: the wait ends when the new boot
        // id shows, or fails at the deadline.
        let new = exec.wait_for_boot("boot-one", start + Duration::from_secs(60)).await.unwrap();
        reboot.join().unwrap();
        assert_eq!(new, "boot-two");
    })
    .await;
    transport.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_boot_id_is_read() {
    let lab = SshLab::new();
    let host = lab.host("epsilon");
    let transport = transport(&lab);
    let exec = executor(&transport, &host);
    let local = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(bounded(exec.boot_id()).await.unwrap(), local.trim());
    transport.close().await;
}

/// `localhost` in a target check is the machine's: the host lives in its own
/// network namespace, where 127.0.0.1:PORT answers 200, while the
/// controller's 127.0.0.1:PORT answers 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_checks_test_the_machine_not_the_controller() {
    let lab = SshLab::new();
    let host = lab.host_in_netns("zeta");
    let inside = HttpServer::from_std(host.bind_inside(), Behaviour::Status(200));
    let port = inside.addr.port();
    // The same port on the controller's loopback answers 500 (when free).
    let controller_side =
        std::net::TcpListener::bind(("127.0.0.1", port)).ok().map(|l| HttpServer::from_std(l, Behaviour::Status(500)));
    let closed = lab_testkit::http::closed_port(Ipv4Addr::LOCALHOST);
    let checks = serde_json::json!([
        { "type": "http", "url": format!("http://localhost:{port}/health") },
        { "type": "tcp", "port": port },
        { "type": "command", "command": format!("ip -o addr show | grep -qF 'inet {}/'", host.addr.ip()) },
        { "type": "tcp", "port": closed, "timeout": 2 },
        { "type": "http", "url": format!("http://127.0.0.1:{port}/health"), "runOn": "controller" },
    ]);
    let machine = parse_machine("zeta", host.machine_json(checks), None).unwrap();
    let transport = transport(&lab);
    let exec: Arc<dyn Executor> = Arc::new(transport.executor(&machine).unwrap());
    let prober = MachineProber::new(&machine, exec, HttpClients::default());
    bounded(async {
        let reports = check_once(&prober, "zeta", &machine.metadata.health_checks).await;
        let summary: Vec<(bool, Via, &str)> = reports.iter().map(|r| (r.passed, r.via, r.message.as_str())).collect();
        assert_eq!(summary[0], (true, Via::Curl, "200 OK"), "{reports:#?}");
        assert_eq!(summary[1], (true, Via::BashDevTcp, "connected"), "{reports:#?}");
        assert!(summary[2].0 && summary[2].1 == Via::Shell, "{reports:#?}");
        assert!(!summary[3].0 && summary[3].1 == Via::BashDevTcp, "{reports:#?}");
        assert!(summary[3].2.contains("Connection refused"), "{reports:#?}");
        assert_eq!(summary[4].1, Via::Controller);
        if controller_side.is_some() {
            assert_eq!(summary[4].2, "500 Internal Server Error, expected 200-299", "{reports:#?}");
        }
        assert!(!summary[4].0);

        // Polling through the executor: the target checks alone are healthy.
        let target_only: Vec<_> = machine.metadata.health_checks[..3].to_vec();
        let start = Instant::now();
        wait_healthy(&prober, "zeta", &target_only, Duration::ZERO, start + Duration::from_secs(30)).await.unwrap();
    })
    .await;
    transport.close().await;
    drop(inside);
}

/// No test host session runs the controller user's shell start-up files:
/// two of the tests above run again in a private mount namespace in which
/// every such file (the user's and the system's, and `$BASH_ENV`/`$ENV`)
/// sleeps for ten minutes. They pass there as they do here.
#[test]
fn sessions_never_run_the_controllers_shell_start_up_files() {
    let home = root_home();
    assert_ne!(home, "/", "root's home is / on this machine: nothing to hide it with");
    let dir = tempfile::tempdir().unwrap();
    let sleepy = dir.path().join("sleepy");
    std::fs::write(&sleepy, "sleep 600\n").unwrap();
    // The real files stay as they are: the namespace sees a tmpfs over the
    // home directory and the sleeping script over the system files.
    let script = r#"
        set -e
        sleepy=$1; home=$2; shift 2
        mount -t tmpfs lab-hostile-home "$home"
        for f in .bashrc .bash_profile .bash_login .profile .zshenv .zshrc .kshrc .shrc; do
            cp "$sleepy" "$home/$f"
        done
        for f in /etc/bash.bashrc /etc/profile /etc/zsh/zshenv /etc/zshenv; do
            if [ -f "$f" ]; then mount --bind "$sleepy" "$f"; fi
        done
        export BASH_ENV="$sleepy" ENV="$sleepy"
        exec "$@"
    "#;
    let out = std::process::Command::new("timeout")
        .args([
            "--kill-after=10",
            "300",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "hostile",
        ])
        .arg(&sleepy)
        .arg(&home)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "--test-threads=1",
            "runs_commands_and_the_remote_shell_sees_the_exact_argv",
            "target_checks_test_the_machine_not_the_controller",
        ])
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "with sleeping shell start-up files: {said}");
    assert!(said.contains("test result: ok. 2 passed"), "{said}");
}

/// Root's home directory from the passwd file (what sshd and ssh use).
fn root_home() -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.len() == 7 && f[2] == "0").unwrap()[5]
        .to_string()
}

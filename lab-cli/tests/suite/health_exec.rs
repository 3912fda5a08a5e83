//! `lab health` and `lab exec` end to end: the real binary against real
//! sshd test hosts (the harness lives in lab-core's tests).

use std::path::Path;
use std::process::{Command, Output};

use lab_testkit::http::{Behaviour, HttpServer};
use lab_testkit::sshd::{SshLab, TestHost};

use crate::util::LAB;

/// Runs lab with a bounded timeout (coreutils `timeout`, so a hang fails the test).
async fn lab(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new("timeout").arg("60").arg(LAB).args(args).output().unwrap())
        .await
        .unwrap()
}

fn fleet_file(lab: &SshLab, hosts: &[(&TestHost, serde_json::Value)]) -> String {
    let fleet: serde_json::Map<String, serde_json::Value> =
        hosts.iter().map(|(host, checks)| (host.name.clone(), host.machine_json(checks.clone()))).collect();
    let path = lab.dir.path().join("fleet.json");
    std::fs::write(&path, serde_json::to_string_pretty(&fleet).unwrap()).unwrap();
    path.display().to_string()
}

fn args(fleet: &str, lab: &SshLab, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["--json-file".to_string(), fleet.to_string()];
    args.extend(rest.iter().map(|s| s.to_string()));
    args.extend(["--ssh-config".to_string(), lab.ssh_config.display().to_string()]);
    args
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_through_tools_then_through_lab_on_the_target() {
    let ssh = SshLab::new();
    let host = ssh.host_in_netns("web");
    let inside = HttpServer::from_std(host.bind_inside(), Behaviour::Status(200));
    let port = inside.addr.port();
    let checks = serde_json::json!([
        { "type": "http", "url": format!("http://localhost:{port}/health") },
        { "type": "tcp", "port": port },
    ]);
    let fleet = fleet_file(&ssh, &[(&host, checks)]);

    let out = lab(args(&fleet, &ssh, &["health"])).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("MACHINE  CHECK"), "{stdout}");
    assert!(lines[1].contains("ok") && lines[1].contains("curl on target") && lines[1].contains("200 OK"), "{stdout}");
    assert!(lines[2].contains("bash /dev/tcp on target") && lines[2].contains("connected"), "{stdout}");

    // With lab installed on the machine, lab runs the checks there.
    std::os::unix::fs::symlink(LAB, host.dir.join("bin/lab")).unwrap();
    let out = lab(args(&fleet, &ssh, &["health", "--json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert_eq!(report["via"], "lab", "{report}");
        assert_eq!(report["passed"], true, "{report}");
        assert_eq!(report["machine"], "web");
    }
    drop(inside);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_required_checks_exit_1_and_optional_ones_warn() {
    let ssh = SshLab::new();
    let host = ssh.host("db");
    let checks = serde_json::json!([
        { "type": "command", "command": "true" },
        { "type": "command", "command": "echo degraded >&2; exit 4", "required": false },
        { "type": "command", "command": "exit 2" },
    ]);
    let fleet = fleet_file(&ssh, &[(&host, checks)]);
    let out = lab(args(&fleet, &ssh, &["health", "--on", "db"])).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let column = stdout.find("RESULT").unwrap();
    let results: Vec<&str> = stdout.lines().skip(1).map(|l| l[column..].split_whitespace().next().unwrap()).collect();
    assert_eq!(results, ["ok", "warn", "FAIL"], "{stdout}");
    assert!(stdout.contains("exit code 4: degraded"), "{stdout}");

    let out = lab(args(&fleet, &ssh, &["health", "--on", "nope"])).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--on \"nope\": `nope` selects no machine"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_everywhere_with_prefixed_output() {
    let ssh = SshLab::new();
    let (a, b) = (ssh.host("alpha"), ssh.host("bravo-long"));
    let fleet = fleet_file(&ssh, &[(&a, serde_json::json!([])), (&b, serde_json::json!([]))]);
    let mut run = args(&fleet, &ssh, &["exec", "--on", "bravo-long,alpha"]);
    run.extend(["--", "printf", "%s\\n", "one two", "$(id)"].map(String::from));
    let out = lab(run).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "alpha      | one two\nalpha      | $(id)\nbravo-long | one two\nbravo-long | $(id)\n"
    );

    let mut run = args(&fleet, &ssh, &["exec", "--on", "alpha,bravo-long"]);
    run.extend(["--", "sh", "-c", "test \"$(hostname)\" && exit 7"].map(String::from));
    let out = lab(run).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("alpha      | failed (exit code 7)"), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_local_prints_json_of_the_target_checks() {
    let server = HttpServer::start(std::net::Ipv4Addr::new(127, 0, 0, 41), Behaviour::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lab-machine-metadata.json");
    let metadata = serde_json::json!({
        "role": "web", "rebootOrder": 0, "hostname": "web1",
        "healthChecks": [
            { "type": "http", "url": server.url("/") },
            { "type": "tcp", "port": 1, "host": "example.invalid", "runOn": "controller" },
        ],
    });
    std::fs::write(&file, metadata.to_string()).unwrap();
    let out = lab(vec!["health".into(), "--local".into(), "--metadata".into(), path(&file)]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.len(), 1, "controller checks are not run on the machine");
    assert_eq!(reports[0]["machine"], "web1");
    assert_eq!(reports[0]["via"], "local");
    assert_eq!(reports[0]["message"], "200 OK");
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

//! `lab serve` through the binary: off loopback without a token file it
//! refuses before reading the fleet, naming the flag that fixes it; on
//! loopback it answers the API (the server itself is tested in lab-serve).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/example.json")
}

#[test]
fn off_loopback_without_a_token_file_lab_serve_refuses_to_start() {
    let start = Instant::now();
    let out = crate::util::lab()
        .arg("--json-file")
        .arg("/nonexistent/fleet.json")
        .args(["serve", "--address", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--token-file") && stderr.contains("0.0.0.0"), "{stderr}");
    assert!(!stderr.contains("nonexistent"), "refused before reading the fleet: {stderr}");
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn on_loopback_lab_serve_answers_without_a_token() {
    let state = tempfile::tempdir().unwrap();
    let mut child = crate::util::lab()
        .arg("--json-file")
        .arg(example())
        .args(["serve", "--port", "0", "--interval", "60", "--ssh-option", "ConnectTimeout=1", "--state-dir"])
        .arg(state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let base = loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("a listening line");
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_string();
        }
    };
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let out =
        std::process::Command::new("curl").args(["-sS", "--max-time", "20", &format!("{base}/api/graph")]).output();
    let _ = child.kill();
    let _ = child.wait();
    let out = out.unwrap();
    let graph: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(graph["waves"][0], serde_json::json!(["router"]), "{graph}");
    assert!(graph["svg"].as_str().unwrap().starts_with("<svg"), "{graph}");
}

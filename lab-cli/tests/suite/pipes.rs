//! A reader that closes stdout early (`lab machines --json | head -1`) ends
//! the command quietly with exit 0: no panic, nothing on stderr. Exercised
//! through the built binary with real pipes, two ways: a reader that reads
//! one line of an output far larger than a pipe's buffer and goes away (as
//! `head -1`), and a pipe whose reader is gone before lab writes at all.

use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A clean fleet of `n` machines in a chain of short runs, as a
/// `--json-file` in `dir`: its outputs are far larger than a pipe's buffer.
fn big_fleet(dir: &Path, n: usize) -> PathBuf {
    let machines: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| {
            let deps = if i % 10 == 0 { vec![] } else { vec![format!("machine-{:05}", i - 1)] };
            let m = serde_json::json!({
                "role": "server",
                "rebootOrder": i % 7,
                "groups": [format!("g{}", i % 13)],
                "dependencies": deps,
            });
            (format!("machine-{i:05}"), m)
        })
        .collect();
    let path = dir.join("big.json");
    std::fs::write(&path, serde_json::Value::Object(machines).to_string()).unwrap();
    path
}

fn assert_quiet_success(args: &[&str], status: std::process::ExitStatus, stderr: &[u8]) {
    let stderr = String::from_utf8_lossy(stderr);
    assert_eq!(status.code(), Some(0), "lab {args:?}: {status}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "lab {args:?}: {stderr}");
    assert_eq!(stderr, "", "lab {args:?} says nothing when its reader goes away");
}

/// Runs `lab ARGS`, reads the first line of its stdout, then closes it.
fn head_one(args: &[&str]) {
    let mut child = crate::util::lab()
        .args(args)
        .env("XDG_STATE_HOME", std::env::temp_dir().join("lab-pipes-unused-state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(!first.is_empty(), "lab {args:?} printed nothing");
    // The reader is dropped here: lab is blocked on a full pipe, or about
    // to be, and its next write fails.
    let out = child.wait_with_output().unwrap();
    assert_quiet_success(args, out.status, &out.stderr);
}

/// Runs `lab ARGS` with stdout a pipe whose read end is already closed.
fn reader_gone(args: &[&str]) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills both descriptors, which we then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fresh descriptors from pipe(2), each owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let out = crate::util::lab().args(args).stdout(Stdio::from(write)).stderr(Stdio::piped()).output().unwrap();
    assert_quiet_success(args, out.status, &out.stderr);
}

#[test]
fn a_reader_that_reads_one_line_and_leaves_ends_the_command_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = big_fleet(dir.path(), 3000);
    let fleet = fleet.to_str().unwrap();
    for command in [
        &["machines"][..],
        &["machines", "--json"],
        &["sequence"],
        &["sequence", "--json", "--max-parallel", "4"],
        &["plan", "reboot"],
        &["plan", "deploy", "--json"],
        &["graph"],
        &["graph", "--format", "json"],
    ] {
        let mut args = vec!["--json-file", fleet];
        args.extend_from_slice(command);
        head_one(&args);
    }
}

#[test]
fn a_reader_gone_before_the_first_write_ends_every_command_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = big_fleet(dir.path(), 30);
    let fleet = fleet.to_str().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let on_fleet: &[&[&str]] = &[
        &["machines"],
        &["machines", "--json"],
        &["show", "machine-00003"],
        &["check"],
        &["check", "--json"],
        &["sequence"],
        &["plan", "reboot", "--json"],
        &["graph", "--format", "mermaid"],
        &["deploy", "--dry-run", "--state-dir", state],
        &["reboot", "--dry-run", "--json", "--state-dir", state],
    ];
    for command in on_fleet {
        let mut args = vec!["--json-file", fleet];
        args.extend_from_slice(command);
        reader_gone(&args);
    }
    for args in [&["completions", "bash"][..], &["completions", "zsh"], &["man"], &["schema"], &["--help"]] {
        reader_gone(args);
    }
}

#[test]
fn a_closed_stdout_does_not_hide_a_failure_that_came_first() {
    // Usage errors are reported on stderr before anything is printed: still 2.
    let mut fds = [0; 2];
    // SAFETY: as in `reader_gone`.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fresh descriptors from pipe(2), each owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let out = crate::util::lab()
        .args(["completions", "tcsh"])
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

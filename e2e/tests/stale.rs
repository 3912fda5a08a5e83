//! What a crashed run leaves (a namespace with a live process, a temp dir)
//! is removed by the next run's start.

use lab_e2e::netns;
use std::process::{Command, Stdio};

#[test]
fn stale_namespaces_processes_and_dirs_are_removed() {
    netns::preflight().unwrap();
    // A pid above Linux's maximum is never alive; slot 251 is outside the
    // range fleets take, so no running fleet is touched.
    let ns = "labe-4194399-251";
    let dir = std::path::Path::new("/tmp/labe-4194399-0");
    let _ = netns::run("ip", &["netns", "add", ns]);
    std::fs::create_dir_all(dir).unwrap();
    let mut sleeper =
        Command::new("ip").args(["netns", "exec", ns, "sleep", "60"]).stdin(Stdio::null()).spawn().unwrap();
    assert!(sleeper.try_wait().unwrap().is_none());

    netns::remove_stale();

    // Killed by the cleanup, else it would end by itself within 60 s.
    let status = sleeper.wait().unwrap();
    assert!(!status.success(), "the stale namespace's process survived");
    assert!(!netns::run("ip", &["netns", "list"]).unwrap().contains(ns));
    assert!(!dir.exists());
}

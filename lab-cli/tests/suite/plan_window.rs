//! Plans and dry runs say what the real run will do about the fleet's
//! rebootWindow: refused (or waiting, with `--outside-window wait`), and
//! when the window opens; a dry run then exits as the real run would begin
//! (2 for a refused reboot, as in the exit table).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A day-of-week window two days from today, 03:00-04:00 local time, so it
/// is closed now; and the local date it next opens on.
fn closed_window() -> (String, String) {
    let date = |args: &[&str]| {
        let out = Command::new("date").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let day = date(&["-d", "+2 days", "+%a"]);
    (format!("{day} 03:00-04:00"), format!("{} 03:00", date(&["-d", "+2 days", "+%F"])))
}

struct Fixture {
    dir: tempfile::TempDir,
    fleet: PathBuf,
    window: String,
    opens: String,
}

/// The example fleet with a closed rebootWindow.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let hosts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hosts/fleet.nix");
    let fleet = dir.path().join("fleet.nix");
    let (window, opens) = closed_window();
    // Data into nix as a string literal: the window has no quote or `$`.
    std::fs::write(&fleet, format!("(import {}) // {{ lab.rebootWindow = \"{window}\"; }}\n", hosts.display()))
        .unwrap();
    Fixture { dir, fleet, window, opens }
}

impl Fixture {
    fn lab(&self, args: &[&str]) -> Output {
        crate::util::lab()
            .arg("--file")
            .arg(&self.fleet)
            .args(args)
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .output()
            .unwrap()
    }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_reboot_dry_run_outside_the_window_says_it_would_be_refused_and_exits_2() {
    let f = fixture();
    let out = f.lab(&["reboot", "--dry-run", "--on", "router"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "the real run would be refused (exit 2)\n{stdout}{stderr}");
    // The plan is still shown, with the window's verdict above it.
    assert!(stdout.contains("Reboot plan: 1 machine in 1 wave"), "{stdout}");
    let expected = format!(
        "Reboot window: outside the maintenance window \"{}\" (rebootWindow) now: the real run would refuse to reboot; it opens at {} local time, in ",
        f.window, f.opens
    );
    assert!(stdout.starts_with(&expected), "{stdout}");
    assert!(stdout.contains("--outside-window wait") && stdout.contains("--ignore-window"), "{stdout}");
    assert!(stderr.contains("error: the real run would stop here: outside the maintenance window"), "{stderr}");
    assert!(!f.dir.path().join("state").exists(), "a dry run writes no state");

    // The same as JSON: the window's verdict, and the same exit code.
    let out = f.lab(&["reboot", "--dry-run", "--on", "router", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["window"]["verdict"], "refuse");
    assert_eq!(json["window"]["window"], f.window.as_str());
    assert_eq!(json["window"]["opens"], f.opens.as_str());
}

#[test]
fn with_outside_window_wait_the_dry_run_says_it_would_wait_and_exits_0() {
    let f = fixture();
    let out = f.lab(&["reboot", "--dry-run", "--on", "router", "--outside-window", "wait"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("the real run would wait for it before each reboot"), "{stdout}");
    assert!(stdout.contains(&format!("it opens at {} local time", f.opens)), "{stdout}");
    // --ignore-window: no word about the window.
    let out = f.lab(&["reboot", "--dry-run", "--on", "router", "--ignore-window"]);
    assert!(out.status.success());
    assert!(!text(&out).0.contains("Reboot window"), "{}", text(&out).0);
}

#[test]
fn lab_plan_reboot_states_the_window_and_when_it_opens() {
    let f = fixture();
    let out = f.lab(&["plan", "reboot", "--on", "router"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "a plan is a read: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("Reboot plan: 1 machine in 1 wave"), "{stdout}");
    assert!(lines[1].starts_with("Estimated duration"), "{stdout}");
    assert!(lines[2].starts_with("Reboot window: outside the maintenance window"), "{stdout}");
    assert!(lines[2].contains("the real run would refuse to reboot") && lines[2].contains(&f.opens), "{stdout}");

    let json: Value =
        serde_json::from_slice(&f.lab(&["plan", "reboot", "--json", "--outside-window", "wait"]).stdout).unwrap();
    assert_eq!(json["kind"], "reboot", "the plan's own fields stay where they were");
    assert_eq!(json["window"]["verdict"], "wait");
    assert_eq!(json["window"]["opens"], f.opens.as_str());

    let ignored: Value =
        serde_json::from_slice(&f.lab(&["plan", "reboot", "--json", "--ignore-window"]).stdout).unwrap();
    assert!(ignored.get("window").is_none(), "{ignored}");
    // A deploy does not reboot: no window.
    let deploy = f.lab(&["plan", "deploy", "--on", "router"]);
    assert!(deploy.status.success());
    assert!(!text(&deploy).0.contains("Reboot window"), "{}", text(&deploy).0);
}

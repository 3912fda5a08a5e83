//! The bad-input catalogue (docs/bad-input.md) through the `lab` binary:
//! hostile names through every command that reads the fleet, hostile `--on`
//! expressions, hostile targets for `lab exec`, credentials in `lab health`,
//! broken Nix. `ssh`, `nix` and `nix-instantiate` on PATH are recorders, so
//! each test also proves what did (or did not) start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A scratch directory with recorders first on PATH: each logs its argv to
/// `<name>.log` and fails, except `ssh`, which runs the remote command the
/// way sshd would (`sh -c` on the last argument) with `remote/` first on PATH.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let sandbox = Sandbox { dir: tempfile::tempdir().unwrap() };
        for dir in ["bin", "remote", "cache"] {
            std::fs::create_dir(sandbox.path(dir)).unwrap();
        }
        for tool in ["nix", "nix-instantiate", "nix-build"] {
            sandbox.script("bin", tool, &format!("printf '%s\\n' \"$@\" >> {}; exit 1", sandbox.log(tool).display()));
        }
        let remote = format!("{}:/usr/bin:/bin", sandbox.path("remote").display());
        sandbox.script(
            "bin",
            "ssh",
            &format!(
                "printf '%s\\n' \"$@\" >> {}; for a; do last=\"$a\"; done; PATH={remote} exec sh -c \"$last\"",
                sandbox.log("ssh").display()
            ),
        );
        sandbox
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self, tool: &str) -> PathBuf {
        self.path(&format!("{tool}.log"))
    }

    fn canary(&self) -> PathBuf {
        self.path("pwned")
    }

    fn script(&self, dir: &str, name: &str, body: &str) {
        let path = self.path(dir).join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn fleet(&self, fleet: &Value) -> String {
        let path = self.path("fleet.json");
        std::fs::write(&path, fleet.to_string()).unwrap();
        path.display().to_string()
    }

    /// Runs lab with only the recorders on PATH (plus the system for `sh`).
    fn lab(&self, args: &[&str]) -> Run {
        let path = format!("{}:/usr/bin:/bin", self.path("bin").display());
        let out =
            crate::util::lab().args(args).env("PATH", path).env("XDG_CACHE_HOME", self.path("cache")).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Run { code: out.status.code().unwrap_or(-1), stdout: text(&out.stdout), stderr: text(&out.stderr) }
    }

    /// True when none of the recorders ran.
    fn nothing_ran(&self) -> bool {
        ["ssh", "nix", "nix-instantiate", "nix-build"].iter().all(|t| !self.log(t).exists())
    }
}

fn hostile_fleet(canary: &Path) -> Value {
    let c = canary.display();
    let names = [
        format!("$(touch {c})"),
        format!("`touch {c}`"),
        format!("a;touch {c}"),
        format!("-oProxyCommand=touch {c}"),
        "quote\"d".into(),
        "it's".into(),
        "new\nline".into(),
        "esc\u{1b}[2Jred".into(),
        "ünïcødé-✓".into(),
        "x".repeat(10_000),
    ];
    let mut fleet = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        let dependencies = if i > 0 { vec![names[i - 1].clone()] } else { vec![] };
        fleet.insert(name.clone(), json!({ "role": "r", "rebootOrder": i, "dependencies": dependencies }));
    }
    Value::Object(fleet)
}

#[test]
fn hostile_names_through_every_command_that_reads_the_fleet() {
    let sandbox = Sandbox::new();
    let fleet_value = hostile_fleet(&sandbox.canary());
    let fleet = sandbox.fleet(&fleet_value);
    let c = sandbox.canary().display().to_string();
    let show_dollar = format!("$(touch {c})");
    let commands: Vec<(Vec<&str>, i32)> = vec![
        (vec!["machines"], 0),
        (vec!["show", &show_dollar], 0),
        (vec!["show", "new\nline"], 0),
        (vec!["check"], 1),
        (vec!["sequence", "--max-parallel", "3"], 0),
        (vec!["graph"], 0),
        (vec!["graph", "--format", "mermaid"], 0),
        // A plan refuses what its run would refuse (issue 16): these names
        // stand in for unset targetHosts that ssh cannot be given.
        (vec!["plan", "reboot"], 1),
        (vec!["plan", "deploy", "--on", "esc*", "--with-dependencies"], 1),
    ];
    for (args, code) in commands {
        let mut all = vec!["--json-file", fleet.as_str()];
        all.extend(&args);
        let run = sandbox.lab(&all);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains('\u{1b}'), "{args:?}: an escape sequence reached the terminal");
            assert!(!text.contains("new\nline"), "{args:?}: a name split a line");
        }
        if args[0] == "check" {
            assert!(run.stdout.contains("error: machine `esc\\u{1b}[2Jred`: name: the name"), "{}", run.stdout);
            assert!(run.stdout.contains("targetHost is unset, so lab would use the name"), "{}", run.stdout);
        }
    }
    // JSON carries the names exactly.
    let json = sandbox.lab(&["--json-file", &fleet, "machines", "--json"]);
    let names: Vec<String> =
        serde_json::from_str::<Value>(&json.stdout).unwrap().as_object().unwrap().keys().cloned().collect();
    assert_eq!(names, fleet_value.as_object().unwrap().keys().cloned().collect::<Vec<_>>());
    assert!(sandbox.nothing_ran(), "reading a fleet from JSON starts no ssh or nix");
    assert!(!sandbox.canary().exists());
}

#[test]
fn hostile_on_expressions_are_clear_errors() {
    let sandbox = Sandbox::new();
    let fleet = sandbox.fleet(&json!({ "web-01": { "role": "web", "rebootOrder": 0 } }));
    let c = sandbox.canary().display().to_string();
    let long = "y".repeat(10_000);
    let cases: Vec<(String, &str)> = vec![
        (format!("$(touch {c})"), "selects no machine (the fleet's machines: web-01)"),
        // `[` opens a glob character class: unclosed, it is a bad glob, said escaped.
        ("esc\u{1b}[2J".into(), "--on \"esc\\u{1b}[2J\": `esc\\u{1b}[2J` is not a valid glob"),
        ("".into(), "--on \"\": the expression is empty"),
        ("web-01,".into(), "term 2 is empty"),
        ("@".into(), "the group name after `@` is empty"),
        ("web-1".into(), "`web-1` selects no machine (did you mean `web-01`?)"),
        (long, "selects no machine"),
    ];
    for (on, expected) in cases {
        // (command, what follows --on)
        let commands: [(&[&str], &[&str]); 4] =
            [(&["sequence"], &[]), (&["plan", "reboot"], &[]), (&["graph"], &[]), (&["exec"], &["--", "true"])];
        for (command, rest) in commands {
            let mut args = vec!["--json-file", fleet.as_str()];
            args.extend(command);
            args.extend(["--on", on.as_str()]);
            args.extend(rest);
            let run = sandbox.lab(&args);
            assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
            assert!(run.stderr.starts_with("error: ") && run.stderr.contains(expected), "{:.300}", run.stderr);
            assert!(!run.stderr.contains('\u{1b}'));
        }
    }
    assert!(sandbox.nothing_ran() && !sandbox.canary().exists());
}

#[test]
fn exec_refuses_hostile_targets_and_passes_argv_as_data() {
    let sandbox = Sandbox::new();
    let c = sandbox.canary().display().to_string();
    let fleet = sandbox.fleet(&json!({
        "evil": { "role": "r", "rebootOrder": 0, "targetHost": format!("-oProxyCommand=touch {c}") },
        "user": { "role": "r", "rebootOrder": 0, "targetHost": "user.lan", "targetUser": format!("x;touch {c}") },
        "good": { "role": "r", "rebootOrder": 0, "targetHost": "good.lan" },
    }));
    for on in ["evil", "user", "evil,good"] {
        let run = sandbox.lab(&["--json-file", &fleet, "exec", "--on", on, "--", "true"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("is not a host name or address") || run.stderr.contains("is not a user name"));
        assert!(sandbox.nothing_ran(), "refused before any ssh starts");
    }
    let args = ["printf", "%s|", &format!("$(touch {c})"), &format!("`touch {c}`"), "a;b", "it's"];
    let mut all = vec!["--json-file", fleet.as_str(), "-v", "exec", "--on", "good", "--"];
    all.extend(args);
    all.extend(["--password", "hunter2"]);
    let run = sandbox.lab(&all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("good | $(touch {c})|`touch {c}`|a;b|it's|--password|hunter2|\n"));
    assert!(run.stderr.contains("--password '***'") && !run.stderr.contains("hunter2"), "-v log: {}", run.stderr);
    let ssh = std::fs::read_to_string(sandbox.log("ssh")).unwrap();
    assert!(ssh.contains("\n--\ngood.lan\n"), "{ssh}");
    assert!(!sandbox.canary().exists());
}

#[test]
fn health_reports_never_show_credentials() {
    let sandbox = Sandbox::new();
    // curl on the machine, failing and saying which url it was given.
    sandbox.script("remote", "curl", "for a; do last=\"$a\"; done; echo \"curl: (22) $last: 401\" >&2; exit 22");
    let fleet =
        sandbox.fleet(&json!({ "web": { "role": "r", "rebootOrder": 0, "targetHost": "web.lan", "healthChecks": [
        { "type": "http", "url": "https://ops:hunter2@web.lan/health?token=abc123" },
        { "type": "command", "command": "echo https://ops:hunter2@db/?token=abc123 >&2; exit 1" },
    ] } }));
    for json in [false, true] {
        let mut args = vec!["--json-file", fleet.as_str(), "health"];
        if json {
            args.push("--json");
        }
        let run = sandbox.lab(&args);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(run.stdout.contains("ops:***@web.lan") && run.stdout.contains("ops:***@db"), "{}", run.stdout);
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains("hunter2") && !text.contains("abc123"), "{text}");
        }
    }
    let show = sandbox.lab(&["--json-file", &fleet, "show", "web"]);
    assert!(show.stdout.contains("http https://ops:***@web.lan/health?token=***"), "{}", show.stdout);
}

#[test]
fn broken_nix_is_a_clear_error_and_never_a_panic() {
    let sandbox = Sandbox::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets");
    let file = |name: &str| fixtures.join(name).display().to_string();
    // The real nix for these: the recorders would hide it.
    let lab = |args: &[&str]| {
        let out = crate::util::lab().args(args).env("XDG_CACHE_HOME", sandbox.path("cache")).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = lab(&["--file", &file("broken-nix.nix"), "check"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("error: machine `aborts` does not evaluate: evaluation aborted with the following error message: 'aborts: this host is not ready'"), "{stdout}");
    assert!(
        stdout.contains("error: machine `recursion` does not evaluate: infinite recursion encountered"),
        "{stdout}"
    );
    let (code, _, stderr) = lab(&["--file", &file("abort.nix"), "sequence"]);
    assert_eq!((code, stderr.lines().count()), (2, 1), "{stderr}");
    assert!(stderr.contains("'the fleet is not ready'; fix it and run again"), "{stderr}");
    let (code, stdout, stderr) = lab(&["--file", &file("fleet-1.nix"), "--eval-timeout", "1.5e19", "machines"]);
    assert_eq!(code, 0, "a timeout past the clock's range means none: {stderr}");
    assert!(stdout.contains("node-00"));
}

//! A broken machine blocks only what needs it (issue 16, item 2): on a
//! fleet where `a` fails to evaluate (real nix), work on machines that
//! neither need `a` nor may be needed by it goes on, with a warning naming
//! `a`; a selection that needs `a` exits 1 naming it. The same for a
//! machine whose metadata is wrong (a bad targetHost), read from JSON.

use std::path::Path;

/// `a` throws; `b` stands alone; `c` needs `a`; `d` needs `b`.
const FLEET: &str = r#"
let m = name: deps: order: {
  config = {
    networking.hostName = name;
    lab.machine = { role = "server"; rebootOrder = order; dependencies = deps; targetHost = "${name}.lan"; };
  };
};
in {
  nixosConfigurations = {
    a = throw "a is broken on purpose";
    b = m "b" [ ] 0;
    c = m "c" [ "a" ] 1;
    d = m "d" [ "b" ] 1;
  };
}
"#;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn lab(dir: &Path, source: &[&str], args: &[&str]) -> Out {
    let out = crate::util::lab()
        .args(source)
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("RUST_LOG")
        .output()
        .expect("lab runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_machine_that_fails_to_evaluate_blocks_only_what_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    std::fs::write(&file, FLEET).unwrap();
    let source = ["--file", file.to_str().unwrap()];

    for args in
        [&["sequence", "--on", "b,d"][..], &["plan", "reboot", "--on", "b"], &["reboot", "--dry-run", "--on", "b"]]
    {
        let out = lab(dir.path(), &source, args);
        assert_eq!(out.code, 0, "lab {args:?}: {}", out.stderr);
        assert!(out.stdout.contains('b') && !out.stdout.contains("a.lan"), "lab {args:?}: {}", out.stdout);
        assert!(
            out.stderr.contains("machine `a` is left alone") && out.stderr.contains("failed to evaluate"),
            "lab {args:?}: {}",
            out.stderr
        );
    }
    // -q silences the warning.
    let quiet = lab(dir.path(), &source, &["-q", "sequence", "--on", "b"]);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""));

    // c needs a; --with-dependents may reach a, whose dependencies are unknown.
    for args in [
        &["sequence", "--on", "c"][..],
        &["reboot", "--dry-run", "--on", "c"],
        &["sequence", "--on", "b", "--with-dependents"],
        &["sequence", "--on", "a"],
        &["sequence"],
    ] {
        let out = lab(dir.path(), &source, args);
        assert_eq!((out.code, out.stdout.as_str()), (1, ""), "lab {args:?}: {}", out.stderr);
        assert!(out.stderr.contains("machine `a`: failed to evaluate"), "lab {args:?}: {}", out.stderr);
        assert!(out.stderr.contains("a is broken on purpose"), "lab {args:?}: {}", out.stderr);
    }
    let needs = lab(dir.path(), &source, &["sequence", "--on", "c"]);
    assert!(needs.stderr.contains("`a` (`c` depends on it)"), "{}", needs.stderr);
    // health, exec and status reach machines without ordering them: a
    // selected machine that failed to evaluate is not clean (exit 1).
    let health = lab(dir.path(), &source, &["health", "--on", "a"]);
    assert_eq!(health.code, 1, "{}", health.stderr);
    assert!(health.stderr.contains("`a` (selected)"), "{}", health.stderr);
    // Nothing was written by the dry runs or the refusals.
    assert!(!dir.path().join("state").exists());
}

#[test]
fn a_machine_with_a_bad_target_blocks_only_what_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.json");
    let fleet = serde_json::json!({
        "a": { "role": "server", "rebootOrder": 0, "targetHost": "-oProxyCommand=touch /tmp/x" },
        "b": { "role": "server", "rebootOrder": 0, "targetHost": "b.lan" },
        "c": { "role": "server", "rebootOrder": 1, "targetHost": "c.lan", "dependencies": ["a"] },
    });
    std::fs::write(&file, fleet.to_string()).unwrap();
    let source = ["--json-file", file.to_str().unwrap()];
    let ok = lab(dir.path(), &source, &["reboot", "--dry-run", "--on", "b", "--no-delay"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stderr.contains("machine `a` is left alone") && ok.stderr.contains("targetHost"), "{}", ok.stderr);
    // Reading the order needs sound dependencies only: a bad targetHost
    // does not change it.
    let read = lab(dir.path(), &source, &["sequence", "--on", "c"]);
    assert_eq!(read.code, 0, "{}", read.stderr);
    for args in [&["reboot", "--dry-run", "--on", "c"][..], &["deploy", "--dry-run"]] {
        let out = lab(dir.path(), &source, args);
        assert_eq!(out.code, 1, "lab {args:?}: {}", out.stderr);
        assert!(out.stderr.contains("machine `a`: targetHost"), "lab {args:?}: {}", out.stderr);
    }
}

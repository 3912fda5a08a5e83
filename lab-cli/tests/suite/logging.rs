//! -v shows what lab runs, -q silences warnings, and nothing is coloured
//! when stderr is not a terminal.

fn lab(args: &[&str]) -> (String, i32) {
    let cache = tempfile::tempdir().unwrap();
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/../hosts/fleet.nix");
    let out = crate::util::lab()
        .args(args)
        .args(["--file", fleet, "check"])
        .env("XDG_CACHE_HOME", cache.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (String::from_utf8(out.stderr).unwrap(), out.status.code().unwrap())
}

#[test]
fn verbose_shows_the_commands_lab_runs() {
    let (stderr, code) = lab(&["-v"]);
    assert_eq!(code, 0);
    assert!(stderr.contains("DEBUG evaluating with nix program="), "{stderr}");
    // An impure source is not cached, and -v says so once.
    assert_eq!(stderr.matches("evaluation not cached: file").count(), 1, "{stderr}");
    assert!(!stderr.contains('\x1b'), "no colour when stderr is not a terminal: {stderr:?}");
    let (quiet, _) = lab(&["-q"]);
    assert!(!quiet.contains("DEBUG"), "{quiet}");
    let out = crate::util::lab().args(["-v", "-q", "schema"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "-v and -q conflict");
}

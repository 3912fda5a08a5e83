//! `--flake .#` (the habit from nixos-rebuild and deploy-rs) is the flake
//! `.`; `--flake .#NAME` is a usage error that says to select with --on.

use std::path::Path;
use std::process::Output;

fn flake_dir() -> tempfile::TempDir {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures.join("flake/flake.nix"), dir.path().join("flake.nix")).unwrap();
    std::fs::copy(fixtures.join("fleets/lib.nix"), dir.path().join("lib.nix")).unwrap();
    dir
}

fn lab(dir: &Path, args: &[&str]) -> Output {
    crate::util::lab().args(args).current_dir(dir).env("XDG_CACHE_HOME", dir.join(".cache")).output().unwrap()
}

#[test]
fn flake_dot_hash_is_the_flake_dot() {
    let dir = flake_dir();
    let plain = lab(dir.path(), &["machines", "--json", "--flake", "."]);
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let machines: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(machines.as_object().unwrap().len(), 5);
    for reference in [".#".to_string(), format!("{}#", dir.path().display())] {
        let hashed = lab(dir.path(), &["machines", "--json", "--flake", &reference]);
        assert!(hashed.status.success(), "--flake {reference}: {}", String::from_utf8_lossy(&hashed.stderr));
        assert_eq!(hashed.stdout, plain.stdout, "--flake {reference}");
    }
}

#[test]
fn an_attribute_after_the_hash_says_to_use_on() {
    let dir = flake_dir();
    let out = lab(dir.path(), &["sequence", "--flake", ".#web1"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: --flake .#web1: lab reads every nixosConfigurations of the flake, so it takes no attribute (#web1); pass --flake . and select machines with --on web1\n"
    );
}

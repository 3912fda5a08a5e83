//! lab-orchestrator.nix evaluated with nixpkgs' real lib, for the tests
//! that check the service.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The module evaluated with `settings` as services.lab-orchestrator and
/// `host` as further NixOS settings (see the fixture for what it returns).
pub fn eval(lib: &Path, settings: &Value, host: &Value) -> Value {
    let root = crate::repo_root();
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .arg(root.join("lab-core/tests/fixtures/module/eval-orchestrator.nix"))
        .args(["--arg", "libPath"])
        .arg(lib)
        .args(["--arg", "modulePath"])
        .arg(root.join("nix/modules/lab-orchestrator.nix"))
        .args(["--argstr", "settingsJSON"])
        .arg(settings.to_string())
        .args(["--argstr", "hostJSON"])
        .arg(host.to_string())
        .output()
        .expect("nix-instantiate runs");
    assert!(out.status.success(), "module evaluation failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

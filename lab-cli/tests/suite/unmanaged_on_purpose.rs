//! The "has no lab module" warning: `-q` silences it, and the fleet's
//! `lab.unmanaged` setting marks a configuration as unmanaged on purpose
//! (an installer image), which is then never warned about; a stale entry is
//! a `lab check` warning (real nix).

use std::path::Path;
use std::process::Output;

fn lab(cache: &Path, args: &[&str]) -> Output {
    crate::util::lab()
        .env("XDG_CACHE_HOME", cache)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap()
}

/// A fleet of one managed machine and two configurations without lab's
/// module, `settings` being its top-level `lab`.
fn fleet(dir: &Path, settings: &str) -> String {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures/fleets/lib.nix");
    let file = dir.join("fleet.nix");
    std::fs::write(
        &file,
        format!(
            "let lib = import {}; in {{\n  lab = {settings};\n  nixosConfigurations = lib.fleet 1 // {{\n    installer = lib.unmanaged \"installer\";\n    forgot = lib.unmanaged \"forgot\";\n  }};\n}}\n",
            lib.display()
        ),
    )
    .unwrap();
    file.to_str().unwrap().to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn quiet_silences_the_unmanaged_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = fleet(dir.path(), "{ }");
    let loud = lab(dir.path(), &["--file", &file, "machines"]);
    assert_eq!(loud.status.code(), Some(0), "{}", stderr(&loud));
    assert!(stderr(&loud).contains("`forgot` has no lab module"), "{}", stderr(&loud));
    assert!(stderr(&loud).contains("`installer` has no lab module"), "{}", stderr(&loud));
    let quiet = lab(dir.path(), &["-q", "--file", &file, "machines"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "", "-q prints only errors");
    assert_eq!(quiet.stdout, loud.stdout);
}

#[test]
fn a_configuration_unmanaged_on_purpose_is_not_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = fleet(dir.path(), "{ unmanaged = [ \"installer\" ]; }");
    let out = lab(dir.path(), &["--file", &file, "check"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("installer"), "{text}");
    assert!(text.contains("`forgot` has no lab module"), "the one not listed is still warned about: {text}");
    // Still listed for the record, as every configuration without the module.
    let out = lab(dir.path(), &["--file", &file, "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["unmanaged"], serde_json::json!(["forgot", "installer"]));
    assert_eq!(report["problems"], serde_json::json!([]));
}

#[test]
fn a_stale_entry_is_a_check_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = fleet(dir.path(), "{ unmanaged = [ \"installer\" \"node-00\" \"instaler\" ]; }");
    let out = lab(dir.path(), &["--file", &file, "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "warnings only: {}", stderr(&out));
    let problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["machine"].as_str().unwrap().to_string(), p["severity"].as_str().unwrap().to_string()))
        .collect();
    let expected = [("instaler", "warning"), ("node-00", "warning")].map(|(m, s)| (m.to_string(), s.to_string()));
    assert_eq!(problems, expected, "{report}");
    let messages = report["problems"].to_string();
    assert!(messages.contains("has lab's module and is managed"), "{messages}");
    assert!(messages.contains("is no configuration of the fleet"), "{messages}");
}

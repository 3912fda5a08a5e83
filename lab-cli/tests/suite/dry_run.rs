//! A dry run changes nothing anywhere: on a git flake whose input has moved
//! on since it was locked (so `nix flake update` would rewrite flake.lock),
//! every `--dry-run` (deploy, reboot, orchestrate, orchestrate --update)
//! leaves `git status` and flake.lock as they were and creates no state:
//! no lock, no journal, not even the state directory.
//!
//! Needs `nix` (run as root without a daemon, as `./dev test` sets it up);
//! the flake's only input is a local path, so no network is used.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Flake {
    _root: tempfile::TempDir,
    dir: PathBuf,
    shared: PathBuf,
    xdg_state: PathBuf,
    xdg_cache: PathBuf,
    state_dir: PathBuf,
}

fn run(program: &str, dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(program).current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn git(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["-c", "user.name=lab test", "-c", "user.email=lab@test", "-c", "commit.gpgsign=false"];
    all.extend_from_slice(args);
    String::from_utf8(run("git", dir, &all).stdout).unwrap()
}

fn nix_flake(dir: &Path, command: &str) {
    run("nix", dir, &["--extra-experimental-features", "nix-command flakes", "flake", command]);
}

/// A git flake of three machines (`c` needs `b`, `b` needs `a`) whose
/// systems read a `path:` input; the lock is committed, then the input
/// changes, so an update would rewrite flake.lock.
fn flake() -> Flake {
    let root = tempfile::tempdir().unwrap();
    let (dir, shared) = (root.path().join("fleet"), root.path().join("shared"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("data.nix"), "{ version = 1; }\n").unwrap();
    let flake = r#"{
  inputs.shared = { url = "path:SHARED"; flake = false; };
  outputs = { self, shared }:
    let
      data = import "${shared}/data.nix";
      system = name: derivation {
        inherit name;
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [ "-c" "echo ${toString data.version} > $out" ];
      };
      host = name: machine: {
        config = {
          networking.hostName = name;
          lab.machine = machine;
          system.build.toplevel = system name;
        };
      };
    in {
      nixosConfigurations = {
        a = host "a" { role = "server"; rebootOrder = 3; };
        b = host "b" { role = "server"; rebootOrder = 2; dependencies = [ "a" ]; };
        c = host "c" { role = "server"; rebootOrder = 1; dependencies = [ "b" ]; };
      };
    };
}
"#;
    std::fs::write(dir.join("flake.nix"), flake.replace("SHARED", shared.to_str().unwrap())).unwrap();
    git(&dir, &["init", "-q"]);
    git(&dir, &["add", "flake.nix"]);
    nix_flake(&dir, "lock");
    git(&dir, &["add", "flake.lock"]);
    git(&dir, &["commit", "-q", "-m", "fleet"]);
    std::fs::write(shared.join("data.nix"), "{ version = 2; }\n").unwrap();
    let state_dir = root.path().join("state-dir");
    std::fs::create_dir(&state_dir).unwrap();
    Flake {
        xdg_state: root.path().join("xdg-state"),
        xdg_cache: root.path().join("xdg-cache"),
        state_dir,
        dir,
        shared,
        _root: root,
    }
}

impl Flake {
    /// `lab ARGS` in the flake's directory (so the flake is found without
    /// `--flake` too), with the XDG directories in the temporary tree.
    fn lab(&self, args: &[&str]) -> Output {
        let out = crate::util::lab()
            .current_dir(&self.dir)
            .args(args)
            .env("XDG_STATE_HOME", &self.xdg_state)
            .env("XDG_CACHE_HOME", &self.xdg_cache)
            .output()
            .unwrap();
        assert!(out.status.success(), "lab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Everything a run could leave behind: the work tree's status (also
    /// ignored files), flake.lock's bytes, what is in the state directories.
    fn snapshot(&self) -> (String, Vec<u8>, Vec<PathBuf>, bool) {
        let status = git(&self.dir, &["status", "--porcelain", "--ignored", "--untracked-files=all"]);
        let lock = std::fs::read(self.dir.join("flake.lock")).unwrap();
        let in_state_dir = walk(&self.state_dir);
        (status, lock, in_state_dir, self.xdg_state.exists())
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out.sort();
    out
}

#[test]
fn every_dry_run_leaves_the_flake_and_the_state_untouched() {
    let flake = flake();
    let before = flake.snapshot();
    assert_eq!(before.0, "", "a clean, committed work tree to begin with");
    assert!(before.2.is_empty() && !before.3);
    let fleet = flake.dir.to_str().unwrap();
    let state = flake.state_dir.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["deploy", "--dry-run"],
        &["deploy", "--dry-run", "--on", "a,c", "--json", "--state-dir", state],
        &["--flake", fleet, "reboot", "--dry-run"],
        &["reboot", "--dry-run", "--json", "--state-dir", state],
        &["orchestrate", "--dry-run"],
        &["orchestrate", "--dry-run", "--goal", "switch", "--state-dir", state],
        &["orchestrate", "--update", "--dry-run"],
        &["--flake", fleet, "orchestrate", "--update", "--dry-run", "--json", "--state-dir", state],
    ];
    for command in commands {
        flake.lab(command);
        assert_eq!(flake.snapshot(), before, "lab {command:?} changed something");
    }
}

#[test]
fn a_dry_run_with_update_lists_the_update_it_would_run() {
    let flake = flake();
    let text = String::from_utf8(flake.lab(&["orchestrate", "--update", "--dry-run"]).stdout).unwrap();
    assert!(text.starts_with("A real run first updates the flake's inputs"), "{text}");
    let update = format!(
        "[controller] (in {}) $ nix --extra-experimental-features 'nix-command flakes' flake update\n",
        flake.dir.display()
    );
    assert!(text.contains(&update), "{text}");

    let json: serde_json::Value =
        serde_json::from_slice(&flake.lab(&["orchestrate", "--update", "--dry-run", "--json"]).stdout).unwrap();
    assert_eq!(json["flakeUpdate"]["dir"], flake.dir.to_str().unwrap());
    assert_eq!(json["flakeUpdate"]["argv"][3], "flake");
    // Without --update there is none to list.
    let json: serde_json::Value =
        serde_json::from_slice(&flake.lab(&["orchestrate", "--dry-run", "--json"]).stdout).unwrap();
    assert!(json.get("flakeUpdate").is_none(), "{json}");

    // The untouched lock is no accident: the update the dry run only listed
    // does rewrite it.
    assert_eq!(git(&flake.dir, &["status", "--porcelain"]), "");
    nix_flake(&flake.dir, "update");
    assert_eq!(git(&flake.dir, &["status", "--porcelain"]), " M flake.lock\n", "input at {}", flake.shared.display());
}

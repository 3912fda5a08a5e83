//! Building machines' systems: `nixosConfigurations.<name>.config.system.build.toplevel`.
//!
//! Two nix processes for a whole run, whatever its size: one evaluation
//! (systems.nix, names passed as JSON data) gives every machine's derivation
//! and output path, which also makes the plan's hash; one `nix-store
//! --realise` builds them all. `--build-on-target` skips the second and
//! builds each derivation on its machine instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::eval::Source;
use crate::exec::tail;
use crate::hint::{Hint, Hinted, Vocabulary};

/// The nix expression that evaluates the systems, kept beside this file.
const SYSTEMS_NIX: &str = include_str!("systems.nix");
/// How long the evaluation of every system may take.
const EVAL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long building every system may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// One machine's system: what to build and what it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemRef {
    /// The derivation (`/nix/store/…-nixos-system-….drv`).
    pub drv_path: String,
    /// The system toplevel it builds.
    pub out_path: String,
}

/// Why systems could not be evaluated or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The fleet source has no systems to build.
    #[error("{0}")]
    NotBuildable(String),
    /// nix failed to evaluate the systems.
    #[error("cannot evaluate the systems of {machines}: {message}; fix the configuration (try `nix-instantiate` on it) and run again")]
    Eval {
        /// The machines asked for.
        machines: String,
        /// nix's message.
        message: String,
    },
    /// nix failed to build.
    #[error("cannot build the systems of {machines}: {message}; nothing was changed on any machine")]
    Build {
        /// The machines asked for.
        machines: String,
        /// nix's message.
        message: String,
    },
}

/// Evaluates and builds systems; a trait so runs can be tested and shown
/// (`--dry-run`) without nix.
#[async_trait]
pub trait Builder: Send + Sync + std::fmt::Debug {
    /// Every machine's derivation and output path, without building.
    async fn instantiate(&self, machines: &[String]) -> Result<BTreeMap<String, SystemRef>, BuildError>;

    /// Builds `systems` on this host, in one go.
    async fn build(&self, systems: &[SystemRef]) -> Result<(), BuildError>;
}

/// Builds with the local nix.
#[derive(Debug)]
pub struct NixBuilder {
    args: Vec<(String, String)>,
    nix_instantiate: PathBuf,
    nix_store: PathBuf,
    /// A dry run evaluates (read-only: no .drv is written) and records the
    /// build command instead of running it.
    dry_run: Option<Mutex<Vec<Vec<String>>>>,
}

impl NixBuilder {
    /// A builder for the machines of `source`.
    pub fn new(source: &Source) -> Result<Self, BuildError> {
        let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
        let args = match source {
            Source::Flake(reference) => {
                let local = !reference.contains(':') && (reference.starts_with(['.', '/']) || reference.contains('/'));
                let target = if local { absolute(Path::new(reference)) } else { reference.clone() };
                vec![("kind".into(), "flake".into()), ("target".into(), target)]
            }
            Source::File(path) => vec![("kind".into(), "file".into()), ("target".into(), absolute(path))],
            Source::HostsDir { dir, nixpkgs } => vec![
                ("kind".into(), "hosts".into()),
                ("target".into(), absolute(dir)),
                ("nixpkgs".into(), absolute(nixpkgs)),
            ],
            Source::JsonFile(path) => {
                return Err(BuildError::NotBuildable(format!(
                    "{} is the JSON contract: it has the machines' metadata but not their systems; deploy from the flake, file or hosts directory instead (--flake, --file, --hosts-dir)",
                    path.display()
                )))
            }
        };
        Ok(NixBuilder { args, nix_instantiate: "nix-instantiate".into(), nix_store: "nix-store".into(), dry_run: None })
    }

    /// This builder, evaluating read-only and recording instead of building.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = Some(Mutex::new(Vec::new()));
        self
    }

    /// The build commands a dry run recorded.
    pub fn recorded(&self) -> Vec<Vec<String>> {
        self.dry_run.as_ref().map(|m| m.lock().unwrap_or_else(PoisonError::into_inner).clone()).unwrap_or_default()
    }

    /// The evaluation argv (the expression goes on standard input).
    pub fn instantiate_argv(&self, machines: &[String]) -> Vec<String> {
        let mut argv: Vec<String> =
            vec![self.nix_instantiate.display().to_string(), "--eval".into(), "--strict".into(), "--json".into()];
        if self.dry_run.is_none() {
            // Writes the .drv files the build needs (plain --eval computes
            // their paths without writing them).
            argv.push("--read-write-mode".into());
        }
        if self.args.iter().any(|(k, v)| k == "kind" && v == "flake") {
            argv.extend(["--extra-experimental-features".into(), "nix-command flakes".into()]);
        }
        for (name, value) in &self.args {
            argv.extend(["--argstr".into(), name.clone(), value.clone()]);
        }
        argv.extend(["--argstr".into(), "names".into(), serde_json::to_string(machines).unwrap_or_default()]);
        argv.push("-".into());
        argv
    }

    /// The build argv.
    pub fn build_argv(&self, systems: &[SystemRef]) -> Vec<String> {
        let mut argv = vec![self.nix_store.display().to_string(), "--realise".into()];
        argv.extend(systems.iter().map(|s| s.drv_path.clone()));
        argv
    }
}

async fn run_nix(argv: &[String], stdin: Option<&str>, timeout: Duration) -> Result<Vec<u8>, String> {
    run_nix_in(argv, stdin, timeout, None).await
}

async fn run_nix_in(
    argv: &[String],
    stdin: Option<&str>,
    timeout: Duration,
    cwd: Option<&Path>,
) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(&argv[0]);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    command
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}; is nix installed?", argv[0]))?;
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin.unwrap_or("").as_bytes()).await;
    }
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("{} did not finish within {} s", argv[0], timeout.as_secs()))?
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(tail(&output.stderr, 1200))
    }
}

#[async_trait]
impl Builder for NixBuilder {
    async fn instantiate(&self, machines: &[String]) -> Result<BTreeMap<String, SystemRef>, BuildError> {
        let eval = |message: String| BuildError::Eval { machines: machines.join(", "), message };
        if machines.is_empty() {
            return Ok(BTreeMap::new());
        }
        let stdout = run_nix(&self.instantiate_argv(machines), Some(SYSTEMS_NIX), EVAL_TIMEOUT).await.map_err(eval)?;
        #[derive(Deserialize)]
        struct Raw {
            drv: String,
            out: String,
        }
        let raw: BTreeMap<String, Raw> =
            serde_json::from_slice(&stdout).map_err(|e| eval(format!("unexpected output from nix: {e}")))?;
        Ok(raw.into_iter().map(|(name, r)| (name, SystemRef { drv_path: r.drv, out_path: r.out })).collect())
    }

    async fn build(&self, systems: &[SystemRef]) -> Result<(), BuildError> {
        if systems.is_empty() {
            return Ok(());
        }
        let argv = self.build_argv(systems);
        if let Some(recorded) = &self.dry_run {
            recorded.lock().unwrap_or_else(PoisonError::into_inner).push(argv);
            return Ok(());
        }
        let names = systems.iter().map(|s| s.out_path.as_str()).collect::<Vec<_>>().join(", ");
        run_nix(&argv, None, BUILD_TIMEOUT)
            .await
            .map(drop)
            .map_err(|message| BuildError::Build { machines: names, message })
    }
}

/// For a dry run of a fleet read from the JSON contract (no systems to
/// evaluate): placeholder paths that say so, and no build.
#[derive(Debug, Default)]
pub struct PlaceholderBuilder;

#[async_trait]
impl Builder for PlaceholderBuilder {
    async fn instantiate(&self, machines: &[String]) -> Result<BTreeMap<String, SystemRef>, BuildError> {
        Ok(machines
            .iter()
            .map(|n| {
                let out = format!("/nix/store/<system-of-{n}>");
                (n.clone(), SystemRef { drv_path: format!("{out}.drv"), out_path: out })
            })
            .collect())
    }

    async fn build(&self, _systems: &[SystemRef]) -> Result<(), BuildError> {
        Ok(())
    }
}

/// `nix flake update` as a run would start it: the command and the flake
/// directory it runs in. Kept apart from running it so a dry run can show
/// it (and refuse what the real run would refuse) without rewriting
/// flake.lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlakeUpdate {
    /// The flake's directory, where the command runs.
    pub dir: PathBuf,
    /// The command.
    pub argv: Vec<String>,
}

impl FlakeUpdate {
    /// The update of the flake at `reference`, which must be a local flake
    /// directory (a remote flake has no lock file here to rewrite).
    pub fn new(reference: &str) -> Result<FlakeUpdate, BuildError> {
        let dir = reference.strip_prefix("path:").unwrap_or(reference);
        if dir.contains(':') || !Path::new(dir).join("flake.nix").is_file() {
            return Err(BuildError::NotBuildable(format!(
                "--update needs a local flake directory; {reference} is not one (update it where it lives, then run without --update)"
            )));
        }
        // Run in the flake's directory: `nix flake update`'s arguments changed
        // meaning across nix versions, its working directory did not.
        let argv = ["nix", "--extra-experimental-features", "nix-command flakes", "flake", "update"]
            .into_iter()
            .map(String::from)
            .collect();
        Ok(FlakeUpdate { dir: PathBuf::from(dir), argv })
    }

    /// Runs it: rewrites the flake's flake.lock.
    pub async fn run(&self) -> Result<(), BuildError> {
        run_nix_in(&self.argv, None, EVAL_TIMEOUT, Some(&self.dir))
            .await
            .map(drop)
            .map_err(|message| BuildError::Eval { machines: "the flake's inputs".into(), message })
    }
}

/// `nix flake update` in the flake at `reference` (a local directory).
pub async fn update_flake(reference: &str) -> Result<(), BuildError> {
    FlakeUpdate::new(reference)?.run().await
}

/// A source that cannot be built, or a flake update it cannot have, sends
/// the reader to another source or to run without the update.
impl Hinted for BuildError {
    fn hints(&self) -> Vec<Hint> {
        let BuildError::NotBuildable(message) = self else { return Vec::new() };
        [Hint::SkipFlakeUpdate, Hint::BuildableSource]
            .into_iter()
            .filter(|hint| message.contains(hint.term(Vocabulary::Cli)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn evaluates_and_builds_systems_of_a_file_in_one_process_each() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fleet.nix");
        // A machine name that would break any expression it was spliced into.
        std::fs::write(
            &file,
            r#"let sys = name: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; };
in { nixosConfigurations = { "a" = { config.system.build.toplevel = sys "a"; }; "b\"; x" = { config.system.build.toplevel = sys "b"; }; }; }"#,
        )
        .unwrap();
        let builder = NixBuilder::new(&Source::File(file)).unwrap();
        let names = vec!["a".to_string(), "b\"; x".to_string()];
        let systems = builder.instantiate(&names).await.unwrap();
        assert_eq!(systems.len(), 2);
        assert!(systems["a"].drv_path.ends_with("-a.drv"), "{systems:?}");
        let all: Vec<SystemRef> = systems.values().cloned().collect();
        builder.build(&all).await.unwrap();
        assert!(Path::new(&systems["b\"; x"].out_path).exists());
    }

    #[test]
    fn the_json_contract_cannot_be_built() {
        let err = NixBuilder::new(&Source::JsonFile("fleet.json".into())).unwrap_err();
        assert!(err.to_string().contains("deploy from the flake, file or hosts directory"), "{err}");
    }
}

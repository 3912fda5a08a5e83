//! Choosing a fleet source from the options a frontend was given.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Source;

/// The fleet-source options every frontend offers (CLI flags, FFI request
/// fields): at most one source; with none, the flake in the working directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceSpec {
    /// A flake reference.
    #[serde(default)]
    pub flake: Option<String>,
    /// A Nix file evaluating to an attrset holding `nixosConfigurations`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// A directory of `<name>/configuration.nix`.
    #[serde(default)]
    pub hosts_dir: Option<PathBuf>,
    /// The nixpkgs used with `hosts_dir`.
    #[serde(default)]
    pub nixpkgs: Option<PathBuf>,
    /// The JSON contract.
    #[serde(default)]
    pub json_file: Option<PathBuf>,
}

/// The options do not name one usable source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceSpecError {
    /// More than one source was given.
    #[error("more than one fleet source given ({0}); pass exactly one of flake, file, hosts-dir, json-file")]
    Conflicting(String),
    /// hosts-dir without nixpkgs.
    #[error("a hosts directory needs a nixpkgs path to evaluate with; pass --nixpkgs PATH")]
    HostsDirWithoutNixpkgs,
    /// Nothing given and no flake.nix in the working directory.
    #[error("no fleet given and no flake.nix in {0}; pass --flake REF, --file PATH, --hosts-dir DIR --nixpkgs PATH or --json-file PATH")]
    Nothing(String),
    /// A flake reference naming an attribute (`FLAKE#NAME`); `FLAKE#` is
    /// taken as the flake (see [`crate::flake_ref::whole_flake`]).
    #[error(transparent)]
    Attribute(#[from] crate::flake_ref::AttributeGiven),
}

impl SourceSpec {
    /// The one source these options name; `cwd` is where to look for a flake.nix.
    pub fn resolve(&self, cwd: &Path) -> Result<Source, SourceSpecError> {
        let given: Vec<&str> = [
            self.flake.as_ref().map(|_| "flake"),
            self.file.as_ref().map(|_| "file"),
            self.hosts_dir.as_ref().map(|_| "hosts-dir"),
            self.json_file.as_ref().map(|_| "json-file"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            return Err(SourceSpecError::Conflicting(given.join(", ")));
        }
        if let Some(flake) = &self.flake {
            // Here, so every frontend takes `.#` (the nixos-rebuild and
            // deploy-rs habit) as the flake `.` alike.
            return Ok(Source::Flake(crate::flake_ref::whole_flake(flake)?.to_string()));
        }
        if let Some(file) = &self.file {
            return Ok(Source::File(file.clone()));
        }
        if let Some(dir) = &self.hosts_dir {
            let nixpkgs = self.nixpkgs.clone().ok_or(SourceSpecError::HostsDirWithoutNixpkgs)?;
            return Ok(Source::HostsDir { dir: dir.clone(), nixpkgs });
        }
        if let Some(path) = &self.json_file {
            return Ok(Source::JsonFile(path.clone()));
        }
        if cwd.join("flake.nix").exists() {
            return Ok(Source::Flake(cwd.display().to_string()));
        }
        Err(SourceSpecError::Nothing(cwd.display().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_source() {
        let cwd = Path::new("/nonexistent");
        let spec = SourceSpec { file: Some("f.nix".into()), ..Default::default() };
        assert_eq!(spec.resolve(cwd), Ok(Source::File("f.nix".into())));
        let both = SourceSpec { file: Some("f".into()), json_file: Some("j".into()), ..Default::default() };
        assert_eq!(both.resolve(cwd), Err(SourceSpecError::Conflicting("file, json-file".into())));
        let hosts = SourceSpec { hosts_dir: Some("hosts".into()), ..Default::default() };
        assert_eq!(hosts.resolve(cwd), Err(SourceSpecError::HostsDirWithoutNixpkgs));
        assert_eq!(
            SourceSpec::default().resolve(cwd).unwrap_err().to_string(),
            "no fleet given and no flake.nix in /nonexistent; pass --flake REF, --file PATH, --hosts-dir DIR --nixpkgs PATH or --json-file PATH"
        );
    }
}

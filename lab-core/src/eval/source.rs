//! A [`Source`] made ready for nix: absolute paths, checked to exist, and the
//! local files it reads (for the cache key).

use std::path::{Path, PathBuf};

use super::{EvalError, Source};

/// Which local files an evaluation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inputs {
    /// A flake in a git work tree: what nix copies (the tracked files, as
    /// they are in the work tree), its lock file among them.
    Git {
        /// The work tree's root.
        root: PathBuf,
    },
    /// The git-tracked files of the work tree holding the directory (what a
    /// flake sees), or every file under it outside git; with `nix_only`,
    /// only `.nix` files.
    Tracked {
        /// The directory.
        dir: PathBuf,
        /// Keep only `.nix` files.
        nix_only: bool,
    },
    /// Every file under the directory; with `nix_only`, only `.nix` files.
    Tree {
        /// The directory.
        dir: PathBuf,
        /// Keep only `.nix` files.
        nix_only: bool,
    },
    /// Not known locally (a remote flake): never cached.
    Remote,
}

/// A source nix can be pointed at.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// `kind` argument of expr.nix.
    pub kind: &'static str,
    /// `target` argument: flake reference, file or hosts directory.
    pub target: String,
    /// `nixpkgs` argument, for hosts directories.
    pub nixpkgs: Option<String>,
    /// What the evaluation reads.
    pub inputs: Vec<Inputs>,
    /// Where nix's store copy of the source comes from, to map error
    /// positions back to the user's files.
    pub root: Option<PathBuf>,
    /// For messages: "flake /x", "file /x", "hosts directory /x".
    pub describe: String,
    /// Evaluated impurely (a file or hosts directory): it may read the
    /// environment, files anywhere, NIX_PATH, the network and the time,
    /// which no key of [`Resolved::inputs`] covers.
    pub impure: bool,
    /// A local flake's lock file, whose root inputs must name every input
    /// the flake has for its evaluation to be pure.
    pub lock: Option<PathBuf>,
}

impl Resolved {
    /// The `--argstr` pairs naming the source.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        let mut args = vec![("kind", self.kind.to_string()), ("target", self.target.clone())];
        if let Some(nixpkgs) = &self.nixpkgs {
            args.push(("nixpkgs", nixpkgs.clone()));
        }
        args
    }
}

/// Checks that `source` exists and makes its paths absolute.
pub(crate) fn resolve(source: &Source) -> Result<Resolved, EvalError> {
    match source {
        Source::Flake(reference) => Ok(resolve_flake(reference)?),
        Source::File(path) => {
            let file = existing(path, "pass --file with a Nix file that evaluates to { nixosConfigurations = ...; }")?;
            let dir = file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
            // Every file beside it: a fleet file may read JSON, keys or
            // other data with readFile and fromJSON. In a git work tree,
            // also its tracked files: a fleet file may import ../shared.nix.
            let mut inputs = vec![Inputs::Tree { dir: dir.clone(), nix_only: false }];
            if let Some(root) = git_root(&dir).filter(|root| *root != dir) {
                inputs.push(Inputs::Tracked { dir: root, nix_only: false });
            }
            Ok(Resolved {
                kind: "file",
                target: text(&file),
                nixpkgs: None,
                inputs,
                root: None,
                describe: format!("file {}", file.display()),
                impure: true,
                lock: None,
            })
        }
        Source::HostsDir { dir, nixpkgs } => {
            let dir = existing(dir, "pass --hosts-dir with a directory of NAME/configuration.nix")?;
            let nixpkgs = existing(nixpkgs, "pass --nixpkgs with a nixpkgs checkout or store path")?;
            if !nixpkgs.join("nixos/lib/eval-config.nix").is_file() {
                return Err(EvalError::NoSuchFleet {
                    path: nixpkgs,
                    hint: "it has no nixos/lib/eval-config.nix; pass --nixpkgs with a nixpkgs tree".into(),
                });
            }
            // Hosts import shared modules beside the hosts directory
            // (../../nix/modules) and may read data files: the files of its
            // git work tree count, or its parent's outside git. A nixpkgs
            // in the store never changes: its path is enough; elsewhere its
            // .nix files count (all of its files would be too many).
            let mut inputs = vec![Inputs::Tracked { dir: dir.parent().unwrap_or(&dir).to_path_buf(), nix_only: false }];
            if !nixpkgs.starts_with("/nix/store") {
                inputs.push(Inputs::Tree { dir: nixpkgs.clone(), nix_only: true });
            }
            Ok(Resolved {
                kind: "hosts",
                target: text(&dir),
                nixpkgs: Some(text(&nixpkgs)),
                inputs,
                root: None,
                describe: format!("hosts directory {}", dir.display()),
                impure: true,
                lock: None,
            })
        }
        Source::JsonFile(_) => unreachable!("the JSON contract is read without nix"),
    }
}

fn resolve_flake(reference: &str) -> Result<Resolved, EvalError> {
    let Some(path) = local_flake_path(reference) else {
        return Ok(Resolved {
            kind: "flake",
            target: reference.to_string(),
            nixpkgs: None,
            inputs: vec![Inputs::Remote],
            root: None,
            describe: format!("flake {reference}"),
            impure: false,
            lock: None,
        });
    };
    let dir = existing(Path::new(path), "pass --flake with a directory holding flake.nix, or a flake reference")?;
    if !dir.join("flake.nix").is_file() {
        return Err(EvalError::NoSuchFleet {
            path: dir,
            hint: "it has no flake.nix; pass --flake with the directory that holds flake.nix".into(),
        });
    }
    // getFlake needs an absolute reference. An explicit `path:` scheme copies
    // the directory itself rather than its git work tree's tracked files.
    let (target, inputs, root) = if reference.starts_with("path:") {
        (format!("path:{}", dir.display()), Inputs::Tree { dir: dir.clone(), nix_only: false }, dir.clone())
    } else if let Some(root) = git_root(&dir) {
        (text(&dir), Inputs::Git { root: root.clone() }, root)
    } else {
        (text(&dir), Inputs::Tree { dir: dir.clone(), nix_only: false }, dir.clone())
    };
    Ok(Resolved {
        kind: "flake",
        target,
        nixpkgs: None,
        inputs: vec![inputs],
        root: Some(root),
        describe: format!("flake {}", dir.display()),
        impure: false,
        lock: Some(dir.join("flake.lock")),
    })
}

/// The directory a flake reference names when it is local: `.`, `./x`,
/// `/x`, `x/y` or `path:X` (nix reads a bare word as a registry name).
fn local_flake_path(reference: &str) -> Option<&str> {
    if let Some(rest) = reference.strip_prefix("path:") {
        return Some(rest.split('?').next().unwrap_or(rest));
    }
    let local = reference.starts_with('/') || reference.starts_with('.') || reference.contains('/');
    (local && !reference.contains(':')).then_some(reference)
}

/// The enclosing git work tree, found by walking up (no process started).
pub(crate) fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

fn existing(path: &Path, hint: &str) -> Result<PathBuf, EvalError> {
    std::fs::canonicalize(path)
        .map_err(|_| EvalError::NoSuchFleet { path: path.to_path_buf(), hint: format!("it does not exist; {hint}") })
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_local_flakes_from_references() {
        assert_eq!(local_flake_path("."), Some("."));
        assert_eq!(local_flake_path("./fleet"), Some("./fleet"));
        assert_eq!(local_flake_path("/srv/fleet"), Some("/srv/fleet"));
        assert_eq!(local_flake_path("path:/srv/fleet?narHash=x"), Some("/srv/fleet"));
        assert_eq!(local_flake_path("github:owner/repo"), None);
        assert_eq!(local_flake_path("nixpkgs"), None);
    }
}

//! What a deploy will change on a machine: the new system against the one
//! it runs, as `nvd` and `nix store diff-closures` show it for one machine.
//!
//! The running system's closure is read on the machine through its
//! executor (store path names and NAR sizes only: nothing is copied); the
//! new system's in the local store, where it was built. Packages are the
//! closures' store paths grouped by package name ([`name::parse`]); a
//! package whose set of versions differs is added, removed or changed.
//! Whether the kernel, initrd or kernel modules change decides whether the
//! machine will need a reboot, as [`crate::remote::Remote::needs_reboot`]
//! decides it after a deploy: against the booted system.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use crate::build::{BuildError, Builder};
use crate::exec::{ExecError, Executor, LocalExecutor};
use crate::reach::Reached;

pub mod closure;
pub mod name;
mod render;

pub use closure::{Closure, BOOT_PARTS};
pub use render::{human_size, render_text, signed_size};

/// Where NixOS links the running system and the booted one.
const CURRENT_SYSTEM: &str = "/run/current-system";
const BOOTED_SYSTEM: &str = "/run/booted-system";

/// Why a machine's diff could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// The machine (or the local store) was not reached, or the query
    /// failed there (the message names the machine).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The query ran on the machine and failed (no nix-store, no such
    /// system, the Nix daemon refused).
    #[error("{machine}: cannot read the closure of {root}: {message}")]
    Query {
        /// The machine.
        machine: String,
        /// The system whose closure was asked for.
        root: String,
        /// What the query said (its standard error), and its exit status.
        message: String,
    },
    /// The new system could not be read in the local store (it was not
    /// built, or was collected since).
    #[error("{machine}: its new system: {source}")]
    NewSystem {
        /// The machine the new system is for.
        machine: String,
        /// Why its closure could not be read.
        source: Box<DiffError>,
    },
    /// The query ran but printed something else than a closure.
    #[error("{machine}: reading the closure of {root} printed {what}; is Nix (nix-store) installed there?")]
    Malformed {
        /// The machine (the local machine's name for the new system).
        machine: String,
        /// The system whose closure was read.
        root: String,
        /// What was wrong with the output.
        what: String,
    },
}

/// One package present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// The package name.
    pub name: String,
    /// Its versions (sorted; `""` for a path without a version).
    pub versions: Vec<String>,
    /// The NAR size of its store paths in bytes.
    pub size_bytes: u64,
}

/// One package present on both sides in other versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionChange {
    /// The package name.
    pub name: String,
    /// The versions only the running system has (sorted).
    pub before: Vec<String>,
    /// The versions only the new system has (sorted).
    pub after: Vec<String>,
    /// How much its store paths grow (negative: shrink), in bytes.
    pub size_delta_bytes: i64,
}

/// The two closures' sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClosureSize {
    /// The running system's closure, in bytes (NAR size).
    pub before_bytes: u64,
    /// The new system's closure, in bytes.
    pub after_bytes: u64,
    /// `after_bytes - before_bytes`.
    pub delta_bytes: i64,
    /// Store paths in the running system's closure.
    pub before_paths: usize,
    /// Store paths in the new system's closure.
    pub after_paths: usize,
    /// Store paths only the new closure has (what a deploy copies at most).
    pub paths_added: usize,
    /// Store paths only the running closure has.
    pub paths_removed: usize,
}

/// One boot part (kernel, initrd, kernel modules) of both systems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BootPart {
    /// `kernel`, `initrd` or `kernel-modules`.
    pub part: String,
    /// Where the running system's points (`None`: it has none).
    pub before: Option<String>,
    /// Where the new system's points.
    pub after: Option<String>,
    /// Whether they differ.
    pub changed: bool,
}

/// What deploying `new_system` changes on one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemDiff {
    /// The system the machine runs (`/run/current-system`, resolved on it).
    pub current_system: String,
    /// The system a deploy would activate.
    pub new_system: String,
    /// True when both are the same store path: a deploy changes nothing.
    pub unchanged: bool,
    /// Packages only the new system has, by name.
    pub added: Vec<Package>,
    /// Packages only the running system has, by name.
    pub removed: Vec<Package>,
    /// Packages in both whose versions differ, by name.
    pub changed: Vec<VersionChange>,
    /// The closures' sizes.
    pub closure: ClosureSize,
    /// Kernel, initrd and kernel modules, running against new.
    pub boot: Vec<BootPart>,
    /// Whether the machine will need a reboot after the deploy to run all
    /// of the new system: its kernel, initrd or modules differ from the
    /// booted system's.
    pub reboot_needed: bool,
    /// Why, naming the parts (`None` when no reboot is needed).
    pub reboot_reason: Option<String>,
}

/// One machine's diff or why there is none, for a fleet.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineDiff {
    /// The machine.
    pub machine: String,
    /// The diff, when it could be made.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub diff: Option<SystemDiff>,
    /// Why not (the machine was unreachable, had no Nix, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Compares two closures (the running system's, read with its booted
/// system's boot parts, and the new one's).
pub fn compare(before: &Closure, after: &Closure) -> SystemDiff {
    let roots = [before.system.as_str(), after.system.as_str()];
    let (old, new) = (group(before, &roots), group(after, &roots));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        match (old.get(name), new.get(name)) {
            (None, Some(n)) => added.push(Package { name: name.clone(), versions: n.versions(), size_bytes: n.size }),
            (Some(o), None) => removed.push(Package { name: name.clone(), versions: o.versions(), size_bytes: o.size }),
            (Some(o), Some(n)) if o.versions != n.versions => changed.push(VersionChange {
                name: name.clone(),
                before: o.versions.difference(&n.versions).cloned().collect(),
                after: n.versions.difference(&o.versions).cloned().collect(),
                size_delta_bytes: n.size as i64 - o.size as i64,
            }),
            _ => {}
        }
    }
    let boot: Vec<BootPart> = BOOT_PARTS
        .iter()
        .enumerate()
        .map(|(i, part)| BootPart {
            part: part.to_string(),
            before: before.boot[i].clone(),
            after: after.boot[i].clone(),
            changed: before.boot[i] != after.boot[i],
        })
        .collect();
    // Against the booted system when known: a machine already waiting for
    // a reboot still needs it after a deploy that keeps its new kernel.
    let booted = before.booted.as_ref().unwrap_or(&before.boot);
    let differing: Vec<&str> =
        BOOT_PARTS.iter().enumerate().filter(|(i, _)| booted[*i] != after.boot[*i]).map(|(_, p)| *p).collect();
    let reboot_reason = (!differing.is_empty())
        .then(|| format!("the new system differs from the booted one in its {}", differing.join(", ")));
    let (before_bytes, after_bytes) = (before.size(), after.size());
    SystemDiff {
        current_system: before.system.clone(),
        new_system: after.system.clone(),
        unchanged: before.system == after.system,
        added,
        removed,
        changed,
        closure: ClosureSize {
            before_bytes,
            after_bytes,
            delta_bytes: after_bytes as i64 - before_bytes as i64,
            before_paths: before.paths.len(),
            after_paths: after.paths.len(),
            paths_added: after.paths.keys().filter(|p| !before.paths.contains_key(*p)).count(),
            paths_removed: before.paths.keys().filter(|p| !after.paths.contains_key(*p)).count(),
        },
        boot,
        reboot_needed: reboot_reason.is_some(),
        reboot_reason,
    }
}

/// A package's versions and size within one closure.
#[derive(Default)]
struct Grouped {
    versions: BTreeSet<String>,
    size: u64,
}

impl Grouped {
    fn versions(&self) -> Vec<String> {
        self.versions.iter().cloned().collect()
    }
}

/// The closure's paths by package name; the systems themselves are left
/// out (the toplevel's name carries its generation, not a package).
fn group(closure: &Closure, roots: &[&str]) -> BTreeMap<String, Grouped> {
    let mut grouped: BTreeMap<String, Grouped> = BTreeMap::new();
    for (path, size) in closure.paths.iter().filter(|(p, _)| !roots.contains(&p.as_str())) {
        let parsed = name::parse(path);
        let entry = grouped.entry(parsed.pname.to_string()).or_default();
        entry.versions.insert(parsed.version.to_string());
        entry.size += size;
    }
    grouped
}

/// What deploying `new_system` (built, in the local store) changes on the
/// machine `exec` reaches: its running system's closure is read there.
pub async fn machine_diff(exec: &dyn Executor, new_system: &str) -> Result<SystemDiff, DiffError> {
    let before = closure::read(exec, CURRENT_SYSTEM, Some(BOOTED_SYSTEM)).await?;
    let local = LocalExecutor::new("local store");
    let after = closure::read(&local, new_system, None)
        .await
        .map_err(|e| DiffError::NewSystem { machine: exec.machine().to_string(), source: Box::new(e) })?;
    Ok(compare(&before, &after))
}

/// [`machine_diff`] of each of `machines` that `new_systems` has a system
/// for, at most `concurrency` at once, sorted by machine; a machine without
/// a new system, or whose diff failed, carries the error instead.
pub async fn fleet_diff(
    machines: &[Reached],
    new_systems: &BTreeMap<String, String>,
    concurrency: usize,
) -> Vec<MachineDiff> {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let tasks = machines.iter().map(|reached| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            let name = reached.machine.name.clone();
            let Some(system) = new_systems.get(&name) else {
                let error = format!("{name}: no new system was built for it");
                return MachineDiff { machine: name, diff: None, error: Some(error) };
            };
            match machine_diff(reached.executor.as_ref(), system).await {
                Ok(diff) => MachineDiff { machine: name, diff: Some(diff), error: None },
                Err(e) => MachineDiff { machine: name, diff: None, error: Some(e.to_string()) },
            }
        }
    });
    let mut diffs = futures_util::future::join_all(tasks).await;
    diffs.sort_by(|a, b| a.machine.cmp(&b.machine));
    diffs
}

/// What [`fleet_diff_built`] is doing, for a frontend's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Evaluating the machines' new systems.
    Evaluating,
    /// Building them in the local store.
    Building,
    /// Reading the running systems from the machines and comparing.
    Reading,
}

/// The whole `lab plan deploy --diff`: evaluates and builds the new
/// systems of `machines` with `builder` (one evaluation, one build), then
/// [`fleet_diff`]; `progress` is told each stage as it starts. An
/// evaluation or build failure ends it (no machine was reached).
pub async fn fleet_diff_built(
    builder: &dyn Builder,
    machines: &[Reached],
    concurrency: usize,
    progress: &mut (dyn FnMut(Stage) + Send),
) -> Result<Vec<MachineDiff>, BuildError> {
    let names: Vec<String> = machines.iter().map(|r| r.machine.name.clone()).collect();
    progress(Stage::Evaluating);
    let systems = builder.instantiate(&names).await?;
    progress(Stage::Building);
    builder.build(&systems.values().cloned().collect::<Vec<_>>()).await?;
    progress(Stage::Reading);
    let new: BTreeMap<String, String> = systems.into_iter().map(|(name, s)| (name, s.out_path)).collect();
    Ok(fleet_diff(machines, &new, concurrency).await)
}

#[cfg(test)]
mod tests;

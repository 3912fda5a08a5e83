//! The evaluation cache: a clean evaluation stored under the cache directory,
//! keyed by a hash of everything that can change it, so a second run with
//! nothing changed starts no nix at all.
//!
//! One entry per source (`eval/<hash of the source>.json`), so entries do not
//! pile up: a new key overwrites the old one. The first line carries the key,
//! a hash of the rest and how long the evaluation took (microseconds, a hint
//! for the next run even once the key is stale); an entry whose key or hash
//! does not match, or that does not parse, is ignored.
//!
//! The cache is private: its directory is 0700 and its entries 0600. An
//! evaluation that carries credentials (a health check's Authorization or
//! token header, a URL with a user or password) is not stored at all, so no secret lands on disk in
//! clear; it is evaluated afresh each time.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::nix::{Nix, EXPR};
use super::source::{git_root, Inputs, Resolved};
use super::{Evaluation, HostFailure};
use crate::metadata::parse_machine;
use crate::settings::FleetSettings;

// 2: entries may name hosts that failed (`failed`), which version 1 would
// have read as a clean fleet without them; the version is also in the key.
const MAGIC: &str = "lab-eval-cache 2";
/// More files than this to hash, and the source is not cached: the key
/// would cost more than the evaluation it saves.
const MAX_KEY_FILES: usize = 20_000;
/// More bytes than this to hash, likewise.
const MAX_KEY_BYTES: u64 = 64 << 20;

/// What hashing a source's files may still read.
struct Budget {
    files: usize,
    bytes: u64,
}

impl Budget {
    /// The budget of one input. Only `.nix` files of a nixpkgs tree are
    /// read (tens of thousands of files): it would always be over, so it
    /// has none.
    fn new(nix_only: bool) -> Self {
        match nix_only {
            true => Budget { files: usize::MAX, bytes: u64::MAX },
            false => Budget { files: MAX_KEY_FILES, bytes: MAX_KEY_BYTES },
        }
    }

    /// Takes one file of `len` bytes; `None` once the budget is spent.
    fn take(&mut self, len: u64) -> Option<()> {
        self.files = self.files.checked_sub(1)?;
        self.bytes = self.bytes.checked_sub(len)?;
        Some(())
    }
}

/// Where and under what key a source's result is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// The entry's file.
    pub file: PathBuf,
    /// Hash of every input; `None` when the result cannot be proven current
    /// (then only the timing hint is kept, never a result).
    pub digest: Option<String>,
}

/// Says once per process why a source is not cached (at `-v`).
fn not_cached(why: std::fmt::Arguments<'_>) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| tracing::info!("evaluation not cached: {why}"));
}

/// The key of `source` under `dir`. Flakes are keyed by what nix locks
/// (see [`hash_git`]); impure sources only when `impure` is set (the user
/// asked). `None`: no entry at all (a remote flake).
pub(crate) fn key(dir: &Path, source: &Resolved, nix: &Nix, impure: bool) -> Option<Key> {
    // Absolute, so that the cache is recognised when it sits inside a tree.
    let dir = &std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut slot = blake3::Hasher::new();
    for (name, value) in source.args() {
        field(&mut slot, name, value.as_bytes());
    }
    let slot = slot.finalize();
    let file = dir.join("eval").join(format!("{}.json", &slot.to_hex()[..32]));
    if source.inputs.contains(&Inputs::Remote) {
        return None;
    }
    if source.impure && !impure {
        not_cached(format_args!(
            "{} is evaluated impurely (it may read the environment, files anywhere, NIX_PATH, downloads and the \
             time), so lab cannot prove a cached result current; pass --cache-impure to cache it anyway",
            source.describe
        ));
        return Some(Key { file, digest: None });
    }
    let mut hasher = blake3::Hasher::new();
    field(&mut hasher, "magic", MAGIC.as_bytes());
    field(&mut hasher, "lab", crate::VERSION.as_bytes());
    field(&mut hasher, "expression", EXPR.as_bytes());
    field(&mut hasher, "nix", nix.identity().as_bytes());
    field(&mut hasher, "source", slot.as_bytes());
    hash_nix_settings(&mut hasher);
    for inputs in &source.inputs {
        let hashed = match inputs {
            Inputs::Remote => None,
            Inputs::Git { root } => hash_git(&mut hasher, root),
            Inputs::Tracked { dir: tracked, nix_only } => {
                field(&mut hasher, "tracked", tracked.to_string_lossy().as_bytes());
                hash_tracked(&mut hasher, tracked, *nix_only, dir, &mut Budget::new(*nix_only))
            }
            Inputs::Tree { dir: tree, nix_only } => {
                field(&mut hasher, "tree", tree.to_string_lossy().as_bytes());
                let keep = |p: &Path| !nix_only || is_nix(p);
                hash_tree(&mut hasher, tree, tree, &keep, dir, &mut Budget::new(*nix_only)).ok().flatten()
            }
        };
        if hashed.is_none() {
            not_cached(format_args!(
                "the files of {} could not be hashed (unreadable, or more than {MAX_KEY_FILES} files or {} MB \
                 to read for a key)",
                source.describe,
                MAX_KEY_BYTES >> 20
            ));
            return Some(Key { file, digest: None });
        }
    }
    Some(Key { file, digest: Some(hasher.finalize().to_hex().to_string()) })
}

/// The environment variables and configuration files that change how nix
/// evaluates (`system`, `pure-eval`, `allowed-uris`, `tarball-ttl`, the
/// store, lookup paths...): all of them, by content.
fn hash_nix_settings(hasher: &mut blake3::Hasher) {
    const VARIABLES: [&str; 8] = [
        "NIX_CONFIG",
        "NIX_PATH",
        "NIX_CONF_DIR",
        "NIX_USER_CONF_FILES",
        "NIX_STORE_DIR",
        "NIX_STATE_DIR",
        "NIX_REMOTE",
        "XDG_CONFIG_HOME",
    ];
    for name in VARIABLES {
        field(hasher, name, std::env::var_os(name).unwrap_or_default().as_encoded_bytes());
    }
    for file in nix_config_files() {
        field(hasher, "nix.conf", file.to_string_lossy().as_bytes());
        field(hasher, "content", &std::fs::read(&file).unwrap_or_default());
    }
}

/// nix's configuration files, as nix finds them: `$NIX_CONF_DIR/nix.conf`
/// (default /etc/nix), then `NIX_USER_CONF_FILES` or the XDG ones.
fn nix_config_files() -> Vec<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let system = var("NIX_CONF_DIR").map_or_else(|| PathBuf::from("/etc/nix"), PathBuf::from);
    let mut files = vec![system.join("nix.conf")];
    if let Some(user) = var("NIX_USER_CONF_FILES") {
        files.extend(std::env::split_paths(&user));
    } else {
        let home =
            var("XDG_CONFIG_HOME").map(PathBuf::from).or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")));
        let dirs = var("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
        files.extend(std::env::split_paths(&dirs).chain(home).map(|d| d.join("nix/nix.conf")));
    }
    files
}

/// What nix locks for a flake in a git work tree: the tracked files as they
/// are in the work tree (nix copies exactly those, committed or not), by
/// git's own index (mode, blob and path of each) plus the content of every
/// file the work tree changed. flake.lock is one of them, and it pins every
/// input (checked after the evaluation, [`all_inputs_locked`]).
fn hash_git(hasher: &mut blake3::Hasher, root: &Path) -> Option<()> {
    let git = |args: &[&str]| {
        duct::cmd("git", args)
            .dir(root)
            .stdout_capture()
            .stderr_null()
            .unchecked()
            .run()
            .ok()
            .filter(|o| o.status.success())
    };
    let index = git(&["ls-files", "-s", "-z"])?;
    field(hasher, "git-index", &index.stdout);
    // Refreshes the index's stat information, so only files really changed
    // are listed (and read).
    let changed = git(&["diff", "--no-ext-diff", "--name-only", "-z"])?;
    let mut files: Vec<&[u8]> = changed.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()).collect();
    files.sort_unstable();
    let mut budget = Budget::new(false);
    for file in files {
        let name = String::from_utf8_lossy(file);
        hash_file(hasher, &name, &root.join(&*name), &mut budget)?;
    }
    Some(())
}

/// True when the flake's lock file pins every one of `inputs` (its direct
/// inputs as nix evaluated them): an input missing from flake.lock is locked
/// by nix afresh on every evaluation (a path's current content, a branch's
/// newest commit), which no key sees.
pub(crate) fn all_inputs_locked(source: &Resolved, inputs: &[String]) -> bool {
    let Some(lock) = &source.lock else { return true };
    let locked: Vec<String> = std::fs::read(lock)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|lock| {
            let root = lock.get("root")?.as_str()?.to_string();
            let inputs = lock.get("nodes")?.get(root)?.get("inputs")?.as_object()?;
            Some(inputs.keys().cloned().collect())
        })
        .unwrap_or_default();
    let missing: Vec<&String> = inputs.iter().filter(|i| *i != "self" && !locked.contains(i)).collect();
    if !missing.is_empty() {
        not_cached(format_args!(
            "{} has inputs its flake.lock does not pin ({}); run `nix flake lock` to cache it",
            source.describe,
            missing.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    missing.is_empty()
}

fn is_nix(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "nix")
}

/// A flake sees its git-tracked files when it lives in a git work tree, and
/// every file under it otherwise.
fn hash_tracked(
    hasher: &mut blake3::Hasher,
    dir: &Path,
    nix_only: bool,
    cache: &Path,
    budget: &mut Budget,
) -> Option<()> {
    let keep = |p: &Path| !nix_only || is_nix(p);
    let Some(root) = git_root(dir) else {
        return hash_tree(hasher, dir, dir, &keep, cache, budget).ok()?;
    };
    let listing = duct::cmd!("git", "-C", &root, "ls-files", "-z").stdout_capture().stderr_null().read().ok()?;
    let mut files: Vec<&str> = listing.split('\0').filter(|f| !f.is_empty() && keep(Path::new(f))).collect();
    files.sort_unstable();
    for file in files {
        hash_file(hasher, file, &root.join(file), budget)?;
    }
    Some(())
}

/// Directories of version control: never read by an evaluation.
const VCS_DIRS: [&str; 4] = [".git", ".hg", ".svn", ".jj"];

/// Hashes the files under `dir` accepted by `keep`, in name order, by path
/// relative to `root` and what nix would read there (see [`hash_file`]).
/// Version-control directories, the `cache` directory (it may sit inside
/// the tree; it is not an input) and directory symlinks are not walked.
/// `Ok(None)`: over the budget.
fn hash_tree(
    hasher: &mut blake3::Hasher,
    root: &Path,
    dir: &Path,
    keep: &dyn Fn(&Path) -> bool,
    cache: &Path,
    budget: &mut Budget,
) -> std::io::Result<Option<()>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            let vcs = VCS_DIRS.iter().any(|d| entry.file_name() == *d);
            let ours = path == cache || path == cache.join("eval");
            if !vcs && !ours && hash_tree(hasher, root, &path, keep, cache, budget)?.is_none() {
                return Ok(None);
            }
        } else if keep(&path) {
            let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            if hash_file(hasher, &name, &path, budget).is_none() {
                return Ok(None);
            }
        }
    }
    Ok(Some(()))
}

/// Hashes one entry under `name` by what nix would read there: a regular
/// file's content (charged to the budget, also through a symlink); for a
/// symlink also its target; anything else (a link to a directory, a pipe,
/// a socket, a device, a dangling link, an unreadable file) by its kind
/// only. A pipe is never opened: opening one waits for a writer. `None`:
/// over the budget.
fn hash_file(hasher: &mut blake3::Hasher, name: &str, path: &Path, budget: &mut Budget) -> Option<()> {
    if let Ok(target) = std::fs::read_link(path) {
        field(hasher, "symlink", target.to_string_lossy().as_bytes());
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {
            budget.take(meta.len())?;
            match std::fs::read(path) {
                Ok(content) => field(hasher, name, &content),
                // nix, run as the same user, cannot read it either.
                Err(_) => field(hasher, name, b"\0unreadable"),
            }
        }
        Ok(meta) => field(hasher, name, if meta.is_dir() { b"\0directory" } else { b"\0special" }),
        Err(_) => field(hasher, name, b"\0missing"),
    }
    Some(())
}

/// Length-prefixed, so no two different inputs hash the same stream.
fn field(hasher: &mut blake3::Hasher, name: &str, value: &[u8]) {
    hasher.update(&(name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update(&(value.len() as u64).to_le_bytes());
    hasher.update(value);
}

/// The cached evaluation under `key`, if there is a sound one.
pub(crate) fn load(key: &Key) -> Option<Evaluation> {
    let digest = key.digest.as_deref().filter(|d| *d != "-")?;
    let bytes = std::fs::read(&key.file).ok()?;
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let (header, payload) = (std::str::from_utf8(&bytes[..newline]).ok()?, &bytes[newline + 1..]);
    let expected = format!("{MAGIC} {digest} {} ", blake3::hash(payload).to_hex());
    if !header.starts_with(&expected) {
        return None;
    }
    let Value::Object(mut object) = serde_json::from_slice(payload).ok()? else { return None };
    let Value::Object(entries) = object.remove("machines")? else { return None };
    let mut machines = BTreeMap::new();
    for (name, value) in entries {
        let machine = parse_machine(&name, value, None).ok()?;
        machines.insert(name, machine);
    }
    let unmanaged: Vec<String> = serde_json::from_value(object.remove("unmanaged")?).ok()?;
    let settings = FleetSettings::from_json(object.remove("settings")?).ok()?;
    // Hosts that failed are only named: the caller reads them again.
    let failed: Vec<String> = match object.remove("failed") {
        Some(value) => serde_json::from_value(value).ok()?,
        None => Vec::new(),
    };
    let failures =
        failed.into_iter().map(|machine| HostFailure { machine, message: String::new(), location: None }).collect();
    // Least recently used goes first when the cache is over its bound.
    if let Ok(file) = std::fs::File::options().append(true).open(&key.file) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
    Some(Evaluation { machines, unmanaged, failures, settings, from_cache: true })
}

/// How long the evaluation stored for this source took, whatever its key:
/// read from the first line only.
pub(crate) fn previous_work(key: &Key) -> Option<Duration> {
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(&key.file).ok()?).read_line(&mut line).ok()?;
    let micros = line.trim_end().strip_prefix(MAGIC)?.split(' ').nth(3)?.parse().ok()?;
    Some(Duration::from_micros(micros))
}

/// Stores an evaluation under `key`: written beside, then renamed, so a
/// reader never sees half an entry. Hosts that failed are stored by name
/// only: their failure may not last (a download that failed), so a reader
/// evaluates them again and takes the rest from here.
pub(crate) fn store(key: &Key, evaluation: &Evaluation, work: Duration) -> std::io::Result<()> {
    store_bounded(key, evaluation, work, MAX_CACHE_BYTES)
}

fn store_bounded(key: &Key, evaluation: &Evaluation, work: Duration, bound: u64) -> std::io::Result<()> {
    let Some(digest) = key.digest.as_deref() else {
        // Not provable: only the timing hint, with no result to serve.
        return write_entry(key, "-", b"", work, bound);
    };
    if let Some(machine) = carries_credentials(evaluation) {
        tracing::debug!("not caching the evaluation: {machine} has credentials in a health check");
        return write_entry(key, "-", b"", work, bound);
    }
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        machines: &'a BTreeMap<String, crate::metadata::Machine>,
        unmanaged: &'a [String],
        settings: &'a FleetSettings,
        failed: Vec<&'a str>,
    }
    let payload = serde_json::to_vec(&Entry {
        machines: &evaluation.machines,
        unmanaged: &evaluation.unmanaged,
        settings: &evaluation.settings,
        failed: evaluation.failures.iter().map(|f| f.machine.as_str()).collect(),
    })?;
    write_entry(key, digest, &payload, work, bound)
}

fn write_entry(key: &Key, digest: &str, payload: &[u8], work: Duration, bound: u64) -> std::io::Result<()> {
    let dir = key.file.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let temporary = key.file.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    writeln!(file, "{MAGIC} {digest} {} {}", blake3::hash(payload).to_hex(), work.as_micros())?;
    file.write_all(payload)?;
    drop(file);
    std::fs::rename(&temporary, &key.file)?;
    evict(dir, bound);
    Ok(())
}

/// The cache's bound: past this many bytes of entries, the least recently
/// used (oldest modification time: a hit touches its entry) are removed
/// until the rest fit. One entry per source, so this is many fleets.
pub const MAX_CACHE_BYTES: u64 = 64 << 20;

/// Removes the least recently used entries of `dir` until they sum to at
/// most `bound` bytes.
fn evict(dir: &Path, bound: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= bound {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::debug!("evicted {} from the evaluation cache", path.display());
            total -= len;
        }
    }
}

/// The first machine whose health checks carry credentials: a credential
/// header (Authorization, a token…) or a URL with a user, password or
/// secret query value.
fn carries_credentials(evaluation: &Evaluation) -> Option<&str> {
    let secret = |check: &crate::metadata::HealthCheck| match check {
        crate::metadata::HealthCheck::Http { url, headers, .. } => {
            headers.keys().any(|h| crate::redact::is_secret_header(h)) || crate::redact::url_has_secret(url)
        }
        _ => false,
    };
    evaluation.machines.iter().find(|(_, m)| m.metadata.health_checks.iter().any(secret)).map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_budget_runs_out_on_files_or_bytes() {
        let mut budget = Budget { files: 2, bytes: 10 };
        assert!(budget.take(4).is_some() && budget.take(6).is_some());
        assert!(budget.take(0).is_none(), "a third file");
        let mut budget = Budget { files: 5, bytes: 10 };
        assert!(budget.take(11).is_none(), "too many bytes");
    }

    #[test]
    fn the_work_hint_outlives_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key { file: dir.path().join("eval/x.json"), digest: Some("old".into()) };
        store(&key, &Evaluation::default(), Duration::from_millis(42)).unwrap();
        assert_eq!(load(&key).map(|e| e.from_cache), Some(true));
        let stale = Key { digest: Some("new".into()), ..key.clone() };
        assert!(load(&stale).is_none());
        assert_eq!(previous_work(&stale), Some(Duration::from_millis(42)));
        // Unprovable: the hint is kept, no result is.
        let unproven = Key { digest: None, ..key };
        store(&unproven, &Evaluation::default(), Duration::from_millis(7)).unwrap();
        assert!(load(&unproven).is_none());
        assert!(load(&Key { digest: Some("-".into()), ..unproven.clone() }).is_none());
        assert_eq!(previous_work(&unproven), Some(Duration::from_millis(7)));
    }

    #[test]
    fn the_least_recently_used_entries_go_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let key = |n: u32| Key { file: dir.path().join(format!("eval/{n}.json")), digest: Some(format!("d{n}")) };
        let evaluation = Evaluation { unmanaged: vec!["x".repeat(100)], ..Evaluation::default() };
        let old = std::time::SystemTime::now() - Duration::from_secs(100);
        for n in 0..3 {
            store_bounded(&key(n), &evaluation, Duration::ZERO, u64::MAX).unwrap();
            let file = std::fs::File::options().append(true).open(&key(n).file).unwrap();
            file.set_modified(old + Duration::from_secs(u64::from(n))).unwrap();
        }
        let size = std::fs::metadata(&key(0).file).unwrap().len();
        // Entry 0 is the oldest written but the most recently used.
        assert!(load(&key(0)).is_some());
        store_bounded(&key(3), &evaluation, Duration::ZERO, 2 * size).unwrap();
        let left: Vec<bool> = (0..4).map(|n| key(n).file.exists()).collect();
        assert_eq!(left, [true, false, false, true], "1 and 2 were the least recently used");
    }
}

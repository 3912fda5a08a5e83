//! Fleet evaluation: read every machine's `lab.machine` from its source.
//!
//! Sources are a flake, a Nix file, a hosts directory (read by nix, see
//! expr.nix beside this file) or the JSON contract itself. Nix sources are
//! read by `jobs` nix processes at once, each taking a share of the hosts; a
//! broken host is reported with nix's message and position while the others
//! are still returned. Results are cached (see [`EvalOptions::cache_dir`]); the
//! hosts that failed are read again on every use of a cached result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::metadata::{parse_machine, parse_machine_options, read_fleet_json, Machine, MetadataError};
use crate::settings::FleetSettings;

mod cache;
mod lookup;
mod nix;
mod run;
mod source;

pub use lookup::LookupError;

mod expression;
mod process;
mod spec;
mod timeout;
/// Cancels an evaluation (or a run, which evaluates first) from another thread.
pub use crate::cancel::CancelToken;
pub use expression::evaluate_expression;
pub use spec::{SourceSpec, SourceSpecError};
pub use timeout::Stopped;

/// Where a fleet comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A flake reference: every `nixosConfigurations.<name>`.
    Flake(String),
    /// A Nix file that evaluates to an attrset holding `nixosConfigurations`.
    File(PathBuf),
    /// `DIR/<name>/configuration.nix`, each evaluated as NixOS with `nixpkgs`.
    HostsDir {
        /// The hosts directory.
        dir: PathBuf,
        /// The nixpkgs to evaluate them with.
        nixpkgs: PathBuf,
    },
    /// The JSON contract (`lab machines --json`, or collected metadata files).
    JsonFile(PathBuf),
}

/// How to evaluate.
#[derive(Debug, Clone, Default)]
pub struct EvalOptions {
    /// nix processes at once, each reading a share of the fleet; the result
    /// is the same for every value. 0 means automatic: the number of cores,
    /// but a single process when the cache records that this source's last
    /// evaluation took less than [`SPLIT_THRESHOLD`] (then starting more nix
    /// processes costs more than it saves).
    pub jobs: usize,
    /// Give up (and kill nix) after this long.
    pub timeout: Option<Duration>,
    /// Directory of the result cache ([`default_cache_dir`]); `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Ignore a cached result and evaluate again (the new result is cached).
    pub refresh: bool,
    /// Cache impure sources too (a file, a hosts directory), keyed by the
    /// files beside them: the directory of a file (and its git work tree's
    /// tracked files), a hosts directory's parent, a nixpkgs' `.nix` files.
    /// Such a key does not see what the evaluation reads elsewhere:
    /// `builtins.getEnv`, files outside those trees (absolute paths,
    /// untracked files of a git tree), what NIX_PATH entries point to,
    /// downloads (`fetchTarball`, `fetchGit` without a hash),
    /// `builtins.currentTime`. Off by default: such sources are evaluated
    /// every time. Flakes are cached either way (pure: keyed by what nix locks).
    pub cache_impure: bool,
    /// Cancels the evaluation from another thread: every nix process is
    /// killed (its whole process group) within a few tens of milliseconds
    /// and the evaluation returns [`EvalError::Cancelled`].
    pub cancel: Option<CancelToken>,
    /// A nix worker whose resident memory passes this many bytes after a
    /// host is replaced by a fresh one for the rest of its hosts (as
    /// nix-eval-jobs' `--max-memory-size`); `None`:
    /// [`DEFAULT_WORKER_MEMORY`].
    pub worker_memory: Option<u64>,
    /// Told of each host as its result arrives (progress on a terminal).
    pub observer: Option<Observer>,
}

/// The default bound of one nix worker's memory: 2 GiB, half of
/// nix-eval-jobs' default (two workers per two cores stay within 4 GiB);
/// a NixOS host costs a few hundred MB, so a worker reads several before it
/// is replaced.
pub const DEFAULT_WORKER_MEMORY: u64 = 2 << 30;

/// A callback told of each host as nix finishes reading it: its name and
/// whether it evaluated.
#[derive(Clone)]
pub struct Observer(std::sync::Arc<HostRead>);

/// What an [`Observer`] calls: the host's name, and whether it evaluated.
type HostRead = dyn Fn(&str, bool) + Send + Sync;

impl Observer {
    /// Calls `f(name, evaluated)` for each host as it is read, from the
    /// thread watching its worker.
    pub fn new(f: impl Fn(&str, bool) + Send + Sync + 'static) -> Observer {
        Observer(std::sync::Arc::new(f))
    }

    pub(crate) fn host_read(&self, name: &str, evaluated: bool) {
        (self.0)(name, evaluated)
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// Below this much evaluation work, automatic [`EvalOptions::jobs`] reads the
/// fleet in one nix process: a nix process costs about 20 ms to start.
pub const SPLIT_THRESHOLD: Duration = Duration::from_millis(250);

/// lab's cache directory: `$XDG_CACHE_HOME/lab`, else `~/.cache/lab`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let base = xdg.or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("lab"))
}

/// A host whose configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFailure {
    /// The host's name.
    pub machine: String,
    /// nix's own message, or why its metadata is unreadable.
    pub message: String,
    /// `file:line` where nix places the error, when it does.
    pub location: Option<String>,
}

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "machine `{}` does not evaluate: {}", crate::printable::printable(&self.machine), self.message)?;
        if let Some(location) = &self.location {
            write!(f, " (at {location})")?;
        }
        Ok(())
    }
}

/// The outcome of reading a fleet: the healthy hosts, the unmanaged ones
/// (no lab module) and the ones that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// Managed machines by name.
    pub machines: BTreeMap<String, Machine>,
    /// Configurations without the lab module, sorted.
    pub unmanaged: Vec<String>,
    /// Hosts that failed to evaluate, sorted by name.
    pub failures: Vec<HostFailure>,
    /// The fleet's `lab` settings (defaults when it declares none).
    #[serde(skip_serializing_if = "settings_are_default")]
    pub settings: FleetSettings,
    /// True when the result came from the cache and no nix ran.
    #[serde(skip)]
    pub from_cache: bool,
}

impl Evaluation {
    /// True when every host evaluated.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    /// The configurations without lab's module that the fleet does not say
    /// are unmanaged on purpose (its `lab.unmanaged` setting): the ones a
    /// frontend warns about, since a machine that forgot the module is
    /// otherwise silently left out of every run.
    pub fn unexpected_unmanaged(&self) -> Vec<&str> {
        self.unmanaged.iter().filter(|name| !self.settings.unmanaged.contains(name)).map(String::as_str).collect()
    }
}

fn settings_are_default(settings: &FleetSettings) -> bool {
    *settings == FleetSettings::default()
}

/// Why a fleet could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON contract is malformed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Metadata(Vec<MetadataError>),
    /// The flake, file, hosts directory or nixpkgs named does not exist.
    #[error("no fleet at {path}: {hint}")]
    NoSuchFleet {
        /// What was given.
        path: PathBuf,
        /// What is wrong and what to pass instead.
        hint: String,
    },
    /// nix is not installed.
    #[error("nix-instantiate is not on PATH; install Nix (e.g. `apt-get install nix-bin`) or read a snapshot with --json-file")]
    NixNotFound,
    /// nix could not be started or waited for.
    #[error("cannot run nix-instantiate: {0}; check the Nix installation")]
    NixSpawn(std::io::Error),
    /// The fleet as a whole does not evaluate (e.g. its flake.nix does not parse).
    #[error("cannot evaluate {fleet}: {message}{}; {}", at(.location), fleet_hint(.message))]
    Fleet {
        /// The source, e.g. "flake /srv/fleet".
        fleet: String,
        /// nix's message.
        message: String,
        /// `file:line` where nix places the error.
        location: Option<String>,
    },
    /// The evaluation ran past [`EvalOptions::timeout`]: which hosts were
    /// still evaluating, which were not reached and which were read.
    #[error("{0}")]
    Timeout(Box<Stopped>),
    /// No configuration of the fleet carries lab's metadata: nothing to
    /// orchestrate, which is never what was meant.
    #[error("{}", nothing_managed(.fleet, .unmanaged))]
    NothingManaged {
        /// The source, e.g. "file /srv/fleet.nix".
        fleet: String,
        /// The configurations found, none managed (sorted; empty when the
        /// fleet has none at all).
        unmanaged: Vec<String>,
    },
    /// The evaluation was cancelled ([`EvalOptions::cancel`]); nix was stopped.
    #[error("evaluation cancelled")]
    Cancelled,
    /// nix answered something lab's expression cannot produce.
    #[error("unexpected output from nix: {0}; this is a bug in lab, please report it")]
    Output(String),
}

impl EvalError {
    /// True when the fleet was read and is itself not clean (it manages no
    /// configuration), rather than lab failing to read it: frontends report
    /// it as they report problems `lab check` finds (the CLI exits 1).
    pub fn fleet_not_clean(&self) -> bool {
        matches!(self, EvalError::NothingManaged { .. })
    }
}

fn at(location: &Option<String>) -> String {
    location.as_ref().map_or(String::new(), |l| format!(" (at {l})"))
}

fn nothing_managed(fleet: &str, unmanaged: &[String]) -> String {
    const SHOWN: usize = 5;
    let fix = "import lab's NixOS module (the flake's nixosModules.lab-machine, or nix/modules/lab-machine.nix) \
               in each machine's configuration and set lab.machine there (role, rebootOrder, ...); \
               lab.machine declared by another module, such as the original design's, is read too";
    if unmanaged.is_empty() {
        return format!(
            "{fleet} has no configurations, so there is nothing to manage; add nixosConfigurations.<name> and {fix}"
        );
    }
    let mut names: Vec<String> =
        unmanaged.iter().take(SHOWN).map(|n| format!("`{}`", crate::printable::printable(n))).collect();
    if unmanaged.len() > SHOWN {
        names.push(format!("and {} more", unmanaged.len() - SHOWN));
    }
    format!(
        "no configuration of {fleet} is managed by lab: {} ({}) {} neither lab.metadata nor lab.machine; {fix}",
        if unmanaged.len() == 1 { "the one configuration".to_string() } else { format!("all {}", unmanaged.len()) },
        names.join(", "),
        if unmanaged.len() == 1 { "has" } else { "have" },
    )
}

/// A fleet read cleanly but with no managed configuration is an error: lab
/// would otherwise report "0 machines" and succeed, hiding a fleet whose
/// machines lack the module. A fleet with failed hosts already says what is
/// wrong with them.
fn require_managed(fleet: &str, evaluation: Evaluation) -> Result<Evaluation, EvalError> {
    if evaluation.machines.is_empty() && evaluation.failures.is_empty() {
        return Err(EvalError::NothingManaged { fleet: fleet.to_string(), unmanaged: evaluation.unmanaged });
    }
    Ok(evaluation)
}

fn fleet_hint(message: &str) -> &'static str {
    if message.contains("'nixosConfigurations' missing") {
        "the fleet must provide nixosConfigurations.<name> for each machine"
    } else {
        "fix it and run again"
    }
}

/// Reads a fleet from `source`: from the cache when it holds a current entry
/// (then no nix runs), else with nix. Hosts that fail to evaluate are in
/// [`Evaluation::failures`] beside the healthy ones; `Err` means the fleet as
/// a whole could not be read (no nix, no such source, a broken top-level
/// file, the timeout) or manages nothing ([`EvalError::NothingManaged`]:
/// no configuration has `lab.metadata` or `lab.machine`, and none failed).
pub fn evaluate(source: &Source, options: &EvalOptions) -> Result<Evaluation, EvalError> {
    if let Source::JsonFile(path) = source {
        return read_json_fleet(path);
    }
    let resolved = source::resolve(source)?;
    let nix = nix::Nix::locate().ok_or(EvalError::NixNotFound)?;
    // The key is taken before nix runs: a file edited meanwhile changes the
    // next key rather than hiding behind a stale entry.
    let key = options.cache_dir.as_deref().and_then(|dir| cache::key(dir, &resolved, &nix, options.cache_impure));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // A timeout too long to be a point in time (e.g. 1.5e19 s) is no deadline.
    let deadline = options.timeout.and_then(|t| Instant::now().checked_add(t));
    let reader = run::Reader {
        nix: &nix,
        source: &resolved,
        watch: process::Watch { deadline, cancel: options.cancel.as_ref() },
        max_memory: options.worker_memory.unwrap_or(DEFAULT_WORKER_MEMORY),
        observer: options.observer.as_ref(),
    };
    let stopped = |e| match e {
        EvalError::Timeout(stopped) => {
            EvalError::Timeout(Box::new(stopped.settle(options.timeout.unwrap_or_default())))
        }
        other => other,
    };
    if let (Some(key), false) = (&key, options.refresh) {
        if let Some(mut cached) = cache::load(key) {
            if cached.failures.is_empty() {
                return require_managed(&resolved.describe, cached);
            }
            // What evaluated is kept; the hosts that failed are read again,
            // alone: a failure may not last (a download), and its message
            // is not stored.
            let names: Vec<String> = cached.failures.drain(..).map(|f| f.machine).collect();
            let jobs = if options.jobs == 0 { cores } else { options.jobs };
            let again = run::read_hosts(&reader, names, jobs).map_err(|e| match e {
                // The machines from the cache were read in time too.
                EvalError::Timeout(mut partial) => {
                    partial.finished.extend(cached.machines.keys().chain(&cached.unmanaged).cloned());
                    stopped(EvalError::Timeout(partial))
                }
                other => other,
            });
            let again = assemble(again?);
            cached.machines.extend(again.machines);
            cached.unmanaged.extend(again.unmanaged);
            cached.unmanaged.sort();
            cached.failures = again.failures;
            cached.from_cache = false;
            if cached.failures.is_empty() {
                // Fixed meanwhile without a change lab can see: keep the whole.
                let _ = cache::store(key, &cached, cache::previous_work(key).unwrap_or_default());
            }
            return require_managed(&resolved.describe, cached);
        }
    }
    let (chunks, jobs) = match options.jobs {
        0 => match key.as_ref().and_then(cache::previous_work) {
            Some(work) if work < SPLIT_THRESHOLD => (1, cores),
            _ => (cores, cores),
        },
        n => (n, n),
    };
    let read = run::read_fleet(&reader, chunks, jobs).map_err(stopped)?;
    let work = read.work;
    tracing::debug!(
        "{} hosts read by {chunks} nix workers in {} ms of work; largest worker {} MB (bound {} MB), {} replaced",
        read.hosts.len(),
        work.as_millis(),
        read.peak >> 20,
        reader.max_memory >> 20,
        read.replaced
    );
    let key = key.map(|mut key| {
        if !cache::all_inputs_locked(&resolved, &read.inputs) {
            key.digest = None;
        }
        key
    });
    let mut evaluation = assemble(read.hosts);
    evaluation.settings = settings(&resolved.describe, read.settings)?;
    let evaluation = require_managed(&resolved.describe, evaluation)?;
    if let Some(key) = &key {
        // What evaluated is cached even when hosts failed (those are read
        // again next time). A cache that cannot be written only costs the
        // next run time.
        let _ = cache::store(key, &evaluation, work);
    }
    Ok(evaluation)
}

/// Reads the JSON contract from `path` (`-`: standard input) with the same
/// contract as a nix source: a machine whose metadata does not read is a
/// failed host (named, with what is wrong and where) beside the machines
/// that read, which `lab check` then validates as any other; only text that
/// is no fleet at all (not JSON, not an object, a key given twice) makes
/// the whole source unreadable; a fleet of no machine manages nothing.
fn read_json_fleet(path: &Path) -> Result<Evaluation, EvalError> {
    let stdin = path.as_os_str() == "-";
    let text = if stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
            .map(|_| text)
            .map_err(|source| EvalError::Io { path: "standard input".into(), source })?
    } else {
        std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.to_path_buf(), source })?
    };
    let file = (!stdin).then_some(path);
    let (machines, errors) = read_fleet_json(&text, file).map_err(|e| EvalError::Metadata(vec![e]))?;
    let failures = errors
        .into_iter()
        .map(|e| match e {
            MetadataError::Invalid { machine, path, message, .. } => HostFailure {
                machine,
                message: if path == "." { message } else { format!("{path}: {message}") },
                location: Some(file.map_or("standard input".into(), |f| f.display().to_string())),
            },
            // read_fleet_json reports a whole-text problem as its Err.
            MetadataError::NotAFleet { message, .. } => HostFailure { machine: String::new(), message, location: None },
        })
        .collect();
    let describe = if stdin { "JSON from standard input".to_string() } else { format!("JSON file {}", path.display()) };
    require_managed(&describe, Evaluation { machines, failures, ..Evaluation::default() })
}

/// The fleet's settings from nix's answer; settings that throw or have the
/// wrong shape make the whole fleet unreadable: they apply to every machine.
fn settings(fleet: &str, value: serde_json::Value) -> Result<FleetSettings, EvalError> {
    if value.get("failed") == Some(&serde_json::Value::Bool(true)) {
        return Err(EvalError::Fleet {
            fleet: fleet.to_string(),
            message: "its `lab` settings fail to evaluate".into(),
            location: None,
        });
    }
    FleetSettings::from_json(value).map_err(|e| EvalError::Fleet {
        fleet: fleet.to_string(),
        message: e.to_string(),
        location: None,
    })
}

fn assemble(hosts: BTreeMap<String, run::HostResult>) -> Evaluation {
    let mut evaluation = Evaluation::default();
    for (name, result) in hosts {
        // Which option tree a shape error points into: lab's module's
        // derived `lab.metadata`, or `lab.machine` as the user wrote it.
        let (parsed, tree) = match result {
            run::HostResult::Metadata(value) => (parse_machine(&name, value, None), "lab.metadata"),
            run::HostResult::Options { machine, hostname, services } => {
                (parse_machine_options(&name, machine, hostname, services), "lab.machine")
            }
            run::HostResult::Unmanaged => {
                evaluation.unmanaged.push(name);
                continue;
            }
            run::HostResult::Failed(e) => {
                evaluation.failures.push(HostFailure { machine: name, message: e.message, location: e.location });
                continue;
            }
        };
        match parsed {
            Ok(machine) => drop(evaluation.machines.insert(name, machine)),
            Err(e) => {
                let message = match e {
                    MetadataError::Invalid { path, message, .. } => format!("{tree} {path}: {message}"),
                    other => other.to_string(),
                };
                evaluation.failures.push(HostFailure { machine: name, message, location: None })
            }
        }
    }
    evaluation
}

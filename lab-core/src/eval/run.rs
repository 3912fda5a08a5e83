//! Reading a fleet with nix: chunks in parallel, then host by host where a
//! chunk failed.
//!
//! The happy path is `jobs` processes at once, each reading the hosts whose
//! sorted index is its chunk number modulo `jobs`, so no listing process
//! runs first. Inside a process each host is wrapped in `builtins.tryEval`,
//! which catches `throw` and failed assertions (how NixOS reports most
//! option errors) without losing the other hosts; such hosts are flagged
//! and read again alone to get nix's message. Errors tryEval cannot catch
//! (syntax errors, missing attributes) fail the whole process: then lab
//! lists the names and reads that chunk's hosts one by one, in parallel.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::nix::{relocate, Failure, Nix, NixMessage, Progress};
use super::source::Resolved;
use super::{EvalError, Stopped};

/// What nix said about one host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HostResult {
    /// Its `config.lab.metadata`.
    Metadata(Value),
    /// No `lab.metadata` but `config.lab.machine` (the original design's
    /// module, or the options set directly): the options, the hostname and
    /// the enabled services, as nix gave them.
    Options {
        /// `config.lab.machine`.
        machine: Value,
        /// `config.networking.hostName`, or null.
        hostname: Value,
        /// The enabled services' names.
        services: Value,
    },
    /// It has no lab module.
    Unmanaged,
    /// It failed; nix's message, positions mapped to the user's files.
    Failed(NixMessage),
}

/// What one read of a fleet gave.
pub(crate) struct Read {
    /// Each host's result.
    pub hosts: BTreeMap<String, HostResult>,
    /// The fleet's `lab` settings as nix gave them (null: none).
    pub settings: Value,
    /// The summed time of the chunk processes, which tells the next run
    /// whether splitting is worth it.
    pub work: Duration,
    /// A flake's direct inputs, by name (empty for other sources).
    pub inputs: Vec<String>,
}

/// Reads every host of `source` in `chunks` nix processes, with at most
/// `jobs` at once, and the fleet's settings with chunk 0.
pub(crate) fn read_fleet(
    nix: &Nix,
    source: &Resolved,
    chunks: usize,
    jobs: usize,
    deadline: Option<Instant>,
) -> Result<Read, EvalError> {
    let base = source.args();
    let run = |extra: &[(&'static str, String)]| {
        let args: Vec<(&str, &str)> = base.iter().chain(extra).map(|(k, v)| (*k, v.as_str())).collect();
        nix.eval(&args, deadline)
    };

    let work = AtomicU64::new(0);
    let outputs = parallel(jobs, &(0..chunks).collect::<Vec<_>>(), |&k| {
        let started = Instant::now();
        let output = run(&[("chunk", k.to_string()), ("chunks", chunks.to_string())]);
        work.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        output
    });
    let mut hosts = BTreeMap::new();
    let mut settings = Value::Null;
    let mut inputs = Vec::new();
    let mut again = Vec::new();
    let mut failed_chunks = Vec::new();
    // Set when a chunk ran out of time: what each stopped process had done.
    let mut stopped: Option<Stopped> = None;
    for (k, output) in outputs.into_iter().enumerate() {
        match output {
            Ok(stdout) => {
                let (found, found_settings, found_inputs) = parse_output(&stdout)?;
                if !found_settings.is_null() {
                    settings = found_settings;
                    inputs = found_inputs;
                }
                for (name, result) in found {
                    match result {
                        Some(result) => drop(hosts.insert(name, result)),
                        None => again.push(name),
                    }
                }
            }
            Err(Failure::Nix(_)) => failed_chunks.push(k),
            Err(Failure::Timeout(stderr)) => {
                stopped.get_or_insert_with(Stopped::default).add_progress(&Progress::from_stderr(&stderr))
            }
            Err(other) => return Err(fatal(other)),
        }
    }
    if let Some(mut stopped) = stopped {
        // Chunks that ended gave their hosts (flagged ones too: they were
        // read, and failed); a chunk that failed as a whole named none.
        stopped.finished.extend(hosts.keys().cloned());
        stopped.finished.extend(again);
        stopped.unlisted |= !failed_chunks.is_empty();
        return Err(EvalError::Timeout(Box::new(stopped)));
    }

    if !failed_chunks.is_empty() {
        let names: Vec<String> = match run(&[("list", "1".into())]) {
            Ok(stdout) => serde_json::from_slice(&stdout).map_err(|e| EvalError::Output(e.to_string()))?,
            Err(Failure::Nix(e)) => {
                return Err(EvalError::Fleet {
                    fleet: source.describe.clone(),
                    location: e.location.map(|l| relocate(&l, source.root.as_deref())),
                    message: e.message,
                })
            }
            Err(other) => return Err(fatal(other)),
        };
        again.extend(
            names.into_iter().enumerate().filter(|(i, _)| failed_chunks.contains(&(i % chunks))).map(|(_, n)| n),
        );
    }

    let read = read_hosts(nix, source, again, jobs, deadline).map_err(|e| match e {
        EvalError::Timeout(mut stopped) => {
            stopped.finished.extend(hosts.keys().cloned());
            EvalError::Timeout(stopped)
        }
        other => other,
    })?;
    hosts.extend(read);
    if failed_chunks.contains(&0) {
        // Chunk 0 carried the settings; read them on their own.
        let stdout = run(&[("only", "[]".into())]).map_err(fatal)?;
        (_, settings, inputs) = parse_output(&stdout)?;
    }
    Ok(Read { hosts, settings, work: Duration::from_micros(work.into_inner()), inputs })
}

/// Reads the hosts `names` one by one, `jobs` at once: each alone, so one
/// that fails cannot hide another's result.
pub(crate) fn read_hosts(
    nix: &Nix,
    source: &Resolved,
    mut names: Vec<String>,
    jobs: usize,
    deadline: Option<Instant>,
) -> Result<BTreeMap<String, HostResult>, EvalError> {
    let base = source.args();
    let run = |extra: &[(&'static str, String)]| {
        let args: Vec<(&str, &str)> = base.iter().chain(extra).map(|(k, v)| (*k, v.as_str())).collect();
        nix.eval(&args, deadline)
    };
    let mut hosts = BTreeMap::new();
    names.sort();
    let outputs = parallel(jobs, &names, |name| {
        // Past the deadline a host is not begun: it was not reached, which
        // the timeout's message tells apart from one that hangs.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let only = serde_json::to_string(&[name]).unwrap_or_default();
        Some(run(&[("only", only)]))
    });
    let mut stopped: Option<Stopped> = None;
    for (name, output) in names.into_iter().zip(outputs) {
        let result = match output {
            Some(Ok(stdout)) => parse_output(&stdout)?.0.into_iter().find(|(n, _)| *n == name).and_then(|(_, r)| r),
            Some(Err(Failure::Nix(mut e))) => {
                e.location = e.location.map(|l| relocate(&l, source.root.as_deref()));
                Some(HostResult::Failed(e))
            }
            // Each host has its own process: the one stopped is the one
            // that was evaluating.
            Some(Err(Failure::Timeout(_))) => {
                stopped.get_or_insert_with(Stopped::default).running.push(name);
                continue;
            }
            None => {
                stopped.get_or_insert_with(Stopped::default).waiting.push(name);
                continue;
            }
            Some(Err(other)) => return Err(fatal(other)),
        };
        let result = result.ok_or_else(|| EvalError::Output(format!("no result for host `{name}`")))?;
        hosts.insert(name, result);
    }
    if let Some(mut stopped) = stopped {
        stopped.finished.extend(hosts.into_keys());
        return Err(EvalError::Timeout(Box::new(stopped)));
    }
    Ok(hosts)
}

/// A host's answer: `None` for a host tryEval flagged.
type HostAnswer = (String, Option<HostResult>);

/// expr.nix's answer: the hosts, the settings (null when not read) and a
/// flake's inputs (read with the settings).
fn parse_output(stdout: &[u8]) -> Result<(Vec<HostAnswer>, Value, Vec<String>), EvalError> {
    let bad = |what: &str| EvalError::Output(what.to_string());
    let Value::Object(mut output) = serde_json::from_slice(stdout).map_err(|e| bad(&e.to_string()))? else {
        return Err(bad("expected an object with hosts and settings"));
    };
    let settings = output.remove("settings").unwrap_or(Value::Null);
    let inputs = serde_json::from_value(output.remove("inputs").unwrap_or(Value::Null)).unwrap_or_default();
    let Some(Value::Object(object)) = output.remove("hosts") else {
        return Err(bad("expected an object keyed by host name"));
    };
    let hosts = parse_hosts(object)?;
    Ok((hosts, settings, inputs))
}

fn parse_hosts(object: serde_json::Map<String, Value>) -> Result<Vec<HostAnswer>, EvalError> {
    let bad = |what: &str| EvalError::Output(what.to_string());
    object
        .into_iter()
        .map(|(name, value)| {
            let Value::Object(mut entry) = value else { return Err(bad("expected an object per host")) };
            let result = if let Some(metadata) = entry.remove("metadata") {
                Some(HostResult::Metadata(metadata))
            } else if let Some(machine) = entry.remove("machine") {
                Some(HostResult::Options {
                    machine,
                    hostname: entry.remove("hostname").unwrap_or(Value::Null),
                    services: entry.remove("services").unwrap_or(Value::Null),
                })
            } else if entry.contains_key("unmanaged") {
                Some(HostResult::Unmanaged)
            } else {
                None
            };
            Ok((name, result))
        })
        .collect()
}

fn fatal(failure: Failure) -> EvalError {
    match failure {
        // A listing or settings read stopped: no host's progress to tell.
        Failure::Timeout(_) => EvalError::Timeout(Box::new(Stopped::after(Duration::ZERO))),
        Failure::Spawn(source) => EvalError::NixSpawn(source),
        Failure::Nix(e) => EvalError::Output(e.message),
    }
}

/// Runs `f` over `items` on at most `jobs` threads; results in item order.
fn parallel<T: Sync, R: Send>(jobs: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 || jobs <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(items.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let result = f(item);
                if let Ok(mut results) = results.lock() {
                    results[i] = Some(result);
                }
            });
        }
    });
    results.into_inner().unwrap_or_default().into_iter().flatten().collect()
}

//! Reading a fleet with nix: worker processes in parallel, each streaming
//! its hosts' results as it reads them.
//!
//! `jobs` nix processes run at once, each reading the hosts whose sorted
//! index is its chunk number modulo `jobs`, so no listing process runs
//! first. Inside a process each host is wrapped in `builtins.tryEval`,
//! which catches `throw` and failed assertions (how NixOS reports most
//! option errors) without losing the other hosts; such hosts are flagged
//! and read again alone to get nix's message. Each host's result is traced
//! on stderr as soon as it is read (expr.nix), so lab has it even when the
//! process does not finish:
//! - an error tryEval cannot catch (a syntax error, a missing attribute,
//!   abort) ends the process while it reads one host: that host failed,
//!   with nix's message; a new process reads the rest of the chunk, and no
//!   host already read is read again;
//! - a process whose resident memory, after a host, plus the most one host
//!   has added in it, passes the bound is replaced by a new one for the
//!   rest of its chunk (as nix-eval-jobs does with `--max-memory-size`,
//!   which checks only after the host, so its workers end one host above
//!   the bound): nix's memory only grows within a process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::nix::{parse_error, relocate, Failure, Nix, NixMessage, Progress};
use super::process::{Killed, Verdict, Watch};
use super::source::Resolved;
use super::{EvalError, Observer, Stopped};

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
    /// The largest resident set any nix process reached, in bytes.
    pub peak: u64,
    /// Processes replaced for their memory.
    pub replaced: usize,
}

/// How to read: the source, the nix, what stops it and who hears of it.
pub(crate) struct Reader<'a> {
    /// nix.
    pub nix: &'a Nix,
    /// The source.
    pub source: &'a Resolved,
    /// Deadline and cancellation.
    pub watch: Watch<'a>,
    /// Past this many bytes after a host, a worker is replaced.
    pub max_memory: u64,
    /// Told of each host as it is read.
    pub observer: Option<&'a Observer>,
}

impl Reader<'_> {
    /// expr.nix's arguments: the source's, then `extra`.
    fn args(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut args = self.source.args();
        args.extend(extra.iter().cloned());
        args
    }

    /// Evaluates expr.nix with the source's arguments and `extra`.
    fn eval(&self, extra: &[(&'static str, String)]) -> Result<Vec<u8>, Failure> {
        let args = self.args(extra);
        self.nix.eval(&borrowed(&args), self.watch)
    }
}

fn borrowed<'a>(args: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    args.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// What one chunk's workers gave.
#[derive(Default)]
struct Chunk {
    hosts: BTreeMap<String, Option<HostResult>>,
    settings: Option<(Value, Vec<String>)>,
    peak: u64,
    replaced: usize,
}

/// Why a chunk stopped early.
enum ChunkError {
    /// The deadline: what was read, and the stopped process's progress.
    Timeout { read: Vec<String>, progress: Progress },
    /// Anything else.
    Fatal(EvalError),
}

/// Reads every host of `source` in `chunks` worker processes, with at most
/// `jobs` at once, and the fleet's settings with chunk 0.
pub(crate) fn read_fleet(reader: &Reader<'_>, chunks: usize, jobs: usize) -> Result<Read, EvalError> {
    let work = AtomicU64::new(0);
    let outputs = parallel(jobs, &(0..chunks).collect::<Vec<_>>(), |&k| {
        let started = Instant::now();
        let output = read_chunk(reader, k, chunks);
        work.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        output
    });
    let mut hosts = BTreeMap::new();
    let mut settings = None;
    let mut again = Vec::new();
    let (mut peak, mut replaced) = (0, 0);
    let mut stopped: Option<Stopped> = None;
    let mut fatal_error = None;
    for output in outputs {
        match output {
            Ok(chunk) => {
                peak = peak.max(chunk.peak);
                replaced += chunk.replaced;
                settings = settings.or(chunk.settings);
                for (name, result) in chunk.hosts {
                    match result {
                        Some(result) => drop(hosts.insert(name, result)),
                        None => again.push(name),
                    }
                }
            }
            Err(ChunkError::Timeout { read, progress }) => {
                let stopped = stopped.get_or_insert_with(Stopped::default);
                stopped.add_progress(&progress);
                stopped.finished.extend(read);
            }
            Err(ChunkError::Fatal(e)) => fatal_error = fatal_error.or(Some(e)),
        }
    }
    if let Some(e) = fatal_error {
        return Err(e);
    }
    if let Some(mut stopped) = stopped {
        // Chunks that ended gave their hosts (flagged ones too: they were
        // read, and failed).
        stopped.finished.extend(hosts.keys().cloned());
        stopped.finished.extend(again);
        return Err(EvalError::Timeout(Box::new(stopped)));
    }
    let read = read_hosts(reader, again, jobs).map_err(|e| match e {
        EvalError::Timeout(mut stopped) => {
            stopped.finished.extend(hosts.keys().cloned());
            EvalError::Timeout(stopped)
        }
        other => other,
    })?;
    hosts.extend(read);
    let (settings, inputs) = match settings {
        Some(found) => found,
        None => {
            // Chunk 0's first process did not finish: the settings alone.
            let stdout = reader.eval(&[("only", "[]".into())]).map_err(fatal)?;
            let (_, settings, inputs) = parse_output(&stdout)?;
            (settings, inputs)
        }
    };
    Ok(Read { hosts, settings, work: Duration::from_micros(work.into_inner()), inputs, peak, replaced })
}

/// Reads chunk `k` of `chunks`: one worker process, then (after a host
/// that broke it, or past the memory bound) a new one for the hosts not
/// read yet, until every host of the chunk is read once.
fn read_chunk(reader: &Reader<'_>, k: usize, chunks: usize) -> Result<Chunk, ChunkError> {
    let mut chunk = Chunk::default();
    let mut extra = vec![("chunk", k.to_string()), ("chunks", chunks.to_string())];
    let first_settings = k == 0;
    loop {
        let mut listed: Option<Vec<String>> = None;
        let mut started: Option<String> = None;
        let mut done_here = 0usize;
        // Resident memory at the previous host's end, and the most one host
        // has added since: the process is replaced when the next host would
        // likely take it past the bound, so its peak stays near the bound
        // instead of one host above it.
        let mut last_rss: Option<u64> = None;
        let mut largest_step = 0u64;
        let args = reader.args(&extra);
        let ended = reader
            .nix
            .run(super::nix::EXPR, &borrowed(&args), reader.watch, |line, rss| {
                let Some(trace) = line.trim().strip_prefix("trace: ") else { return Verdict::Continue };
                let Some((tag, json)) = trace.split_once(' ') else { return Verdict::Continue };
                match tag {
                    "lab-hosts" => listed = serde_json::from_str(json).ok(),
                    "lab-start" => started = serde_json::from_str(json).ok(),
                    "lab-done" => {
                        let Ok((name, value)) = serde_json::from_str::<(String, Value)>(json) else {
                            return Verdict::Continue;
                        };
                        let result = parse_entry(value);
                        if let Some(observer) = reader.observer {
                            observer
                                .host_read(&name, result.as_ref().is_some_and(|r| !matches!(r, HostResult::Failed(_))));
                        }
                        chunk.hosts.insert(name, result);
                        started = None;
                        done_here += 1;
                        let left = listed.as_ref().map_or(0, |l| l.len().saturating_sub(done_here));
                        if let Some(last) = last_rss {
                            largest_step = largest_step.max(rss.saturating_sub(last));
                        }
                        last_rss = Some(rss);
                        if rss.saturating_add(largest_step) > reader.max_memory && left > 0 {
                            return Verdict::Kill;
                        }
                    }
                    _ => {}
                }
                Verdict::Continue
            })
            .map_err(|e| ChunkError::Fatal(EvalError::NixSpawn(e)))?;
        chunk.peak = chunk.peak.max(ended.peak);
        let read_names = || chunk.hosts.keys().cloned().collect::<Vec<_>>();
        match ended.killed {
            Some(Killed::Cancelled) => return Err(ChunkError::Fatal(EvalError::Cancelled)),
            Some(Killed::Deadline) => {
                return Err(ChunkError::Timeout { read: read_names(), progress: Progress::from_stderr(&ended.stderr) })
            }
            Some(Killed::Asked) => {
                tracing::debug!(
                    "nix worker replaced after {done_here} hosts: {} MB resident, bound {} MB",
                    ended.peak >> 20,
                    reader.max_memory >> 20
                );
                chunk.replaced += 1;
            }
            None if ended.success => {
                if first_settings && extra[0].0 == "chunk" {
                    let (_, settings, inputs) = parse_output(&ended.stdout).map_err(ChunkError::Fatal)?;
                    chunk.settings = Some((settings, inputs));
                }
                return Ok(chunk);
            }
            None => {
                let mut message = parse_error(&ended.stderr);
                let (Some(_), Some(culprit)) = (&listed, started.take()) else {
                    // Before any host: the fleet itself does not evaluate.
                    return Err(ChunkError::Fatal(EvalError::Fleet {
                        fleet: reader.source.describe.clone(),
                        location: message.location.map(|l| relocate(&l, reader.source.root.as_deref())),
                        message: message.message,
                    }));
                };
                message.location = message.location.map(|l| relocate(&l, reader.source.root.as_deref()));
                if let Some(observer) = reader.observer {
                    observer.host_read(&culprit, false);
                }
                chunk.hosts.insert(culprit, Some(HostResult::Failed(message)));
            }
        }
        let read: BTreeSet<&String> = chunk.hosts.keys().collect();
        let rest: Vec<&String> = listed.iter().flatten().filter(|n| !read.contains(n)).collect();
        if rest.is_empty() {
            // Without settings if chunk 0's first process did not finish:
            // read_fleet reads them alone.
            return Ok(chunk);
        }
        extra = vec![("hosts", serde_json::to_string(&rest).unwrap_or_default())];
    }
}

/// Reads the hosts `names` one by one, `jobs` at once: each alone, so one
/// that fails cannot hide another's result.
pub(crate) fn read_hosts(
    reader: &Reader<'_>,
    mut names: Vec<String>,
    jobs: usize,
) -> Result<BTreeMap<String, HostResult>, EvalError> {
    let (source, deadline) = (reader.source, reader.watch.deadline);
    let run = |extra: &[(&'static str, String)]| reader.eval(extra);
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
            Some(Err(Failure::Cancelled)) => return Err(EvalError::Cancelled),
            Some(Err(Failure::Timeout)) => {
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
    let hosts = match output.remove("hosts") {
        Some(Value::Object(object)) => parse_hosts(object)?,
        // A chunk's count: its results were traced.
        Some(Value::Number(_)) => Vec::new(),
        _ => return Err(bad("expected an object keyed by host name")),
    };
    Ok((hosts, settings, inputs))
}

fn parse_hosts(object: serde_json::Map<String, Value>) -> Result<Vec<HostAnswer>, EvalError> {
    object
        .into_iter()
        .map(|(name, value)| {
            if !value.is_object() {
                return Err(EvalError::Output("expected an object per host".into()));
            }
            Ok((name, parse_entry(value)))
        })
        .collect()
}

/// One host's entry: `None` for a host tryEval flagged (or anything else).
fn parse_entry(value: Value) -> Option<HostResult> {
    let Value::Object(mut entry) = value else { return None };
    if let Some(metadata) = entry.remove("metadata") {
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
    }
}

fn fatal(failure: Failure) -> EvalError {
    match failure {
        // A listing or settings read stopped: no host's progress to tell.
        Failure::Timeout => EvalError::Timeout(Box::new(Stopped::after(Duration::ZERO))),
        Failure::Spawn(source) => EvalError::NixSpawn(source),
        Failure::Cancelled => EvalError::Cancelled,
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

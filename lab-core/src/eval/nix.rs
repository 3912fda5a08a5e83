//! Running lab's expression (expr.nix) through `nix-instantiate`, and reading
//! nix's error messages.
//!
//! `nix-instantiate --eval --strict --json` rather than `nix eval`: it is as
//! fast, and it is the one whose `--argstr` reaches an `--expr` function on
//! every nix from 2.8 on, so names and paths stay data.

use std::path::{Path, PathBuf};

use super::process::{self, Ended, Killed, Verdict, Watch};

/// The expression, kept beside the Rust that runs it.
pub(crate) const EXPR: &str = include_str!("expr.nix");

const PROGRAM: &str = "nix-instantiate";

/// Why one nix process gave no result.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The deadline passed; the process was killed.
    Timeout,
    /// The process could not be started.
    Spawn(std::io::Error),
    /// The evaluation was cancelled; the process was killed.
    Cancelled,
    /// nix failed; its message.
    Nix(NixMessage),
}

/// nix's own error: the message and, when nix gives one, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NixMessage {
    /// The primary error line, without `error:`.
    pub message: String,
    /// `file:line` of the error.
    pub location: Option<String>,
}

/// The nix installation lab runs.
#[derive(Debug, Clone)]
pub(crate) struct Nix {
    program: PathBuf,
}

impl Nix {
    /// Finds `nix-instantiate` on PATH; `None` when nix is not installed.
    pub fn locate() -> Option<Nix> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|dir| dir.join(PROGRAM)).find(|p| p.is_file()).map(|program| Nix { program })
    }

    /// Stands for nix's version without starting nix (which would cost more
    /// than a whole cache hit): the resolved binary (a store path names the
    /// version), its size and modification time.
    pub fn identity(&self) -> String {
        let real = std::fs::canonicalize(&self.program).unwrap_or_else(|_| self.program.clone());
        let meta = std::fs::metadata(&real).ok();
        let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
        let mtime = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{} {size} {mtime}", real.display())
    }

    /// Evaluates expr.nix with `args` (each passed with `--argstr`), killing
    /// nix at the watch's deadline or cancellation. Returns nix's stdout.
    pub fn eval(&self, args: &[(&str, &str)], watch: Watch<'_>) -> Result<Vec<u8>, Failure> {
        self.eval_expr(EXPR, args, watch)
    }

    /// Evaluates `expr` to JSON, each of `args` passed with `--argstr` (so
    /// they reach a function `{ name, ... }:` as data), killing nix at the
    /// watch's deadline or cancellation.
    pub fn eval_expr(&self, expr: &str, args: &[(&str, &str)], watch: Watch<'_>) -> Result<Vec<u8>, Failure> {
        let ended = self.run(expr, args, watch, |_, _| Verdict::Continue).map_err(Failure::Spawn)?;
        match ended.killed {
            Some(Killed::Cancelled) => Err(Failure::Cancelled),
            Some(_) => Err(Failure::Timeout),
            None if ended.success => Ok(ended.stdout),
            // On failure stdout holds half-printed JSON; only stderr counts.
            None => Err(Failure::Nix(parse_error(&ended.stderr))),
        }
    }

    /// Runs nix on `expr` (expr.nix's arguments as `--argstr`), passing each
    /// stderr line as it comes to `on_line` with nix's resident set.
    pub fn run(
        &self,
        expr: &str,
        args: &[(&str, &str)],
        watch: Watch<'_>,
        on_line: impl FnMut(&str, u64) -> Verdict,
    ) -> std::io::Result<Ended> {
        // nix-instantiate reads an expression that starts with `-` as a flag
        // (`-1` is refused, `--help` opens a man page); a leading space keeps
        // it an expression and means the same to Nix.
        let spaced;
        let expr = if expr.starts_with('-') {
            spaced = format!(" {expr}");
            spaced.as_str()
        } else {
            expr
        };
        let mut argv: Vec<&str> = vec!["--eval", "--strict", "--json", "--expr", expr];
        // builtins.getFlake needs the feature; other sources start faster without it.
        if args.contains(&("kind", "flake")) {
            argv.extend(["--extra-experimental-features", "nix-command flakes"]);
        }
        for (name, value) in args {
            argv.extend(["--argstr", name, value]);
        }
        tracing::debug!(program = %self.program.display(), args = args.len(), "evaluating with nix");
        process::run(&self.program, &argv, watch, on_line)
    }
}

/// How far one chunk process had got when it was stopped, from expr.nix's
/// `lab-hosts` / `lab-start` / `lab-done` traces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The hosts the process was to read; `None` when it had not listed
    /// them yet (still loading the fleet, or not a chunk process).
    pub hosts: Option<Vec<String>>,
    /// Hosts begun, in order.
    pub started: Vec<String>,
    /// Hosts read, in order.
    pub done: Vec<String>,
}

impl Progress {
    /// Reads the traces out of a process's stderr; other lines are ignored.
    pub fn from_stderr(stderr: &str) -> Progress {
        let mut progress = Progress::default();
        for line in strip_ansi(stderr).lines() {
            let Some(trace) = line.trim().strip_prefix("trace: ") else { continue };
            let Some((tag, json)) = trace.split_once(' ') else { continue };
            match tag {
                "lab-hosts" => progress.hosts = serde_json::from_str(json).ok(),
                "lab-start" => progress.started.extend(serde_json::from_str::<String>(json).ok()),
                "lab-done" => progress.done.extend(done_name(json)),
                _ => {}
            }
        }
        progress
    }
}

/// The host a `lab-done` trace names: `"NAME"`, or `["NAME", RESULT]`.
fn done_name(json: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(json).ok()? {
        serde_json::Value::String(name) => Some(name),
        serde_json::Value::Array(mut pair) if !pair.is_empty() => match pair.swap_remove(0) {
            serde_json::Value::String(name) => Some(name),
            _ => None,
        },
        _ => None,
    }
}

/// Reads nix's error text, in the 2.8 layout (`error: MSG`, then `at
/// FILE:LINE:COL:`, then the trace) and in the current one (the trace first,
/// each frame `… while …` with its `at`, the primary `error: MSG` last).
pub(crate) fn parse_error(stderr: &str) -> NixMessage {
    let text = strip_ansi(stderr);
    // expr.nix's progress traces are not nix's message.
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.starts_with("trace: lab-")).collect();
    let Some(primary) = lines.iter().rposition(|l| l.starts_with("error:")) else {
        let message = lines.iter().find(|l| !l.is_empty()).map_or("nix failed without a message", |l| l);
        return NixMessage { message: message.to_string(), location: None };
    };
    let first = lines[primary].trim_start_matches("error:").trim();
    let message = if first.is_empty() {
        // `error:` alone heads a multi-line message; its text follows.
        lines[primary + 1..].iter().find(|l| !l.is_empty() && !l.starts_with('…')).copied().unwrap_or("")
    } else {
        first
    };
    // The position nearest to the primary error is the innermost one: after
    // it in 2.8's layout, before it in the current one. Positions inside
    // lab's own expression («string») say nothing to the user.
    let location = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| position(l).map(|p| (i, p)))
        .min_by_key(|(i, _)| (i.abs_diff(primary), *i < primary))
        .map(|(_, p)| p);
    NixMessage { message: message.to_string(), location }
}

/// `at FILE:LINE:COL:` → `FILE:LINE`, for files only.
fn position(line: &str) -> Option<String> {
    let rest = line.strip_prefix("at ")?.strip_suffix(':')?;
    let mut parts = rest.rsplitn(3, ':');
    let (_col, line_no, file) = (parts.next()?, parts.next()?, parts.next()?);
    if file.starts_with('«') || line_no.parse::<u32>().is_err() {
        return None;
    }
    Some(format!("{file}:{line_no}"))
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI sequences end with a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Maps a position in a store copy of a flake (`/nix/store/HASH-source/REST`)
/// back to the user's file (`root/REST`) when that file exists.
pub(crate) fn relocate(location: &str, root: Option<&Path>) -> String {
    let Some(root) = root else { return location.to_string() };
    let Some(rest) = location.strip_prefix("/nix/store/") else { return location.to_string() };
    let Some((_, inside)) = rest.split_once("-source/") else { return location.to_string() };
    let file = inside.rsplit_once(':').map_or(inside, |(f, _)| f);
    if root.join(file).exists() {
        format!("{}/{inside}", root.display())
    } else {
        location.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_2_8_layout() {
        let text = "error: attribute 'b' missing\n\n       at /f/h2.nix:3:34:\n\n            2| {\n       Did you mean a?\n(use '--show-trace' to show detailed location information)\n";
        let m = parse_error(text);
        assert_eq!(m.message, "attribute 'b' missing");
        assert_eq!(m.location.as_deref(), Some("/f/h2.nix:3"));
    }

    #[test]
    fn reads_the_current_layout() {
        let text = "error:\n       … while evaluating the attribute 'x'\n         at «string»:12:5:\n\n       … while calling the 'throw' builtin\n         at /f/h1.nix:4:22:\n            4|  role = throw \"no\";\n\n       error: h1 is broken\n";
        let m = parse_error(text);
        assert_eq!(m.message, "h1 is broken");
        assert_eq!(m.location.as_deref(), Some("/f/h1.nix:4"));
    }

    #[test]
    fn a_throw_in_2_8_has_no_position() {
        let m = parse_error("\u{1b}[31;1merror:\u{1b}[0m no role\n");
        assert_eq!(m, NixMessage { message: "no role".into(), location: None });
    }

    #[test]
    fn relocates_store_paths_to_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("flake.nix"), "{}").unwrap();
        let moved = relocate("/nix/store/abc-source/flake.nix:3", Some(dir.path()));
        assert_eq!(moved, format!("{}/flake.nix:3", dir.path().display()));
        assert_eq!(relocate("/nix/store/abc-source/gone.nix:3", Some(dir.path())), "/nix/store/abc-source/gone.nix:3");
    }
}

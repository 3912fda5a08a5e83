//! The per-host event log: one line per action a test host takes (boot,
//! reboot, activation, unit start and exit, timers), written by the host's
//! own tooling and read by tests to assert order, independently of what lab
//! reports.
//!
//! Line format: `MICROS\tHOST\tEVENT\tkey=value\tkey=value…`, where MICROS
//! is the wall clock in microseconds since the Unix epoch (all hosts share
//! the machine's clock, so lines of different hosts compare). Tabs, newlines
//! and backslashes in values are escaped, so a line is always one record.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Microseconds since the Unix epoch.
    pub at_us: u128,
    /// The host that wrote it.
    pub host: String,
    /// What happened, e.g. `activate`, `reboot-start`, `boot-complete`.
    pub event: String,
    /// Details in the order written, e.g. `("goal", "switch")`.
    pub fields: Vec<(String, String)>,
}

impl LogEntry {
    /// The value of a detail field, if present.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0)
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n")
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Appends one event to the log at `path`.
///
/// The line goes out in a single `write` on an `O_APPEND` file, so lines of
/// concurrent writers (several processes on one host) never interleave.
pub fn append(path: &Path, host: &str, event: &str, fields: &[(&str, &str)]) -> std::io::Result<()> {
    let mut line = format!("{}\t{}\t{}", now_us(), escape(host), escape(event));
    for (key, value) in fields {
        line.push('\t');
        line.push_str(&escape(key));
        line.push('=');
        line.push_str(&escape(value));
    }
    line.push('\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(line.as_bytes())
}

/// Parses a whole log; lines that are not records (a torn last line of a
/// host killed mid-write cannot happen with single writes, but be safe) are
/// skipped.
pub fn parse(text: &str) -> Vec<LogEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<LogEntry> {
    let mut parts = line.split('\t');
    let at_us = parts.next()?.parse().ok()?;
    let host = unescape(parts.next()?);
    let event = unescape(parts.next()?);
    let fields = parts
        .map(|part| match part.split_once('=') {
            Some((k, v)) => (unescape(k), unescape(v)),
            None => (unescape(part), String::new()),
        })
        .collect();
    Some(LogEntry { at_us, host, event, fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_awkward_values() {
        let dir = std::env::temp_dir().join(format!("lab-e2e-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        append(&path, "a", "systemd-run", &[("unit", "x"), ("argv", "sh\t-c\n'a=b'\\")]).unwrap();
        append(&path, "a", "boot", &[]).unwrap();
        let entries = parse(&std::fs::read_to_string(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].event, "systemd-run");
        assert_eq!(entries[0].field("argv"), Some("sh\t-c\n'a=b'\\"));
        assert_eq!(entries[1].fields, vec![]);
        assert!(entries[0].at_us <= entries[1].at_us);
    }
}

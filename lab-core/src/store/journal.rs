//! The run journal: one JSON line per step transition, fsynced before the
//! next action, so `lab resume` knows exactly what was done.
//!
//! Every line ends with a checksum chained over the line before it
//! (`"sum"`, blake3), so an edit that leaves valid JSON behind (a state
//! changed by hand, a line copied from another journal) shows as well as
//! a broken one.
//!
//! Reading is strict: a last line cut short by a crash (no final newline) is
//! the only damage tolerated, because the step it described never had its
//! record made durable, so the action after it never started. Any other
//! damage (a malformed line in the middle, a gap in sequence numbers, a
//! record from another run, a checksum that does not match) refuses: resume
//! never guesses. A journal begun by an older lab, without checksums, is
//! read and continued as it began. What no journal can show is whole lines
//! removed from its end: that reads as a run that stopped there.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::now_ms;
use super::record::{lenient_or_default, Outcome, RunStart, StepDetail};

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// In the plan, not started.
    Planned,
    /// Started; its effect on the machine is not yet known.
    Started,
    /// Done and verified.
    Finished,
    /// Failed.
    Failed,
    /// Undone: the machine is back on its previous generation.
    RolledBack,
    /// Not run: a dependency failed, the run stopped, or it was not needed.
    Skipped,
}

/// What a journal line records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Entry {
    /// The run began: what it runs and the hash of its plan.
    RunStarted {
        /// Hash of the plan (and so of the fleet configuration it came from).
        plan_hash: String,
        /// What was run, e.g. `["reboot", "--on", "@dns"]`.
        command: Vec<String>,
        /// What resume needs to rebuild the plan (the run's spec, each
        /// machine's system and metadata hash), and whether this start is a
        /// resumption.
        #[serde(default, deserialize_with = "lenient_or_default", skip_serializing_if = "RunStart::is_empty")]
        detail: RunStart,
    },
    /// A step changed state.
    Step {
        /// The step's id in the plan.
        step: String,
        /// The machine it acts on.
        machine: String,
        /// Its new state.
        state: StepState,
        /// What was observed (boot id before a reboot, the generation
        /// activated, the error), for resume and for people.
        #[serde(default, skip_serializing_if = "StepDetail::is_none")]
        detail: StepDetail,
    },
    /// The run ended.
    RunFinished {
        /// How it ended.
        outcome: Outcome,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// 0, 1, 2, … without gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The run this line belongs to.
    pub run_id: String,
    /// What happened.
    #[serde(flatten)]
    pub entry: Entry,
}

/// Why the journal cannot be written or trusted.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Writing failed (disk full, read-only): the run must stop before its next action.
    #[error("cannot write the journal {}: {source}; the run stops here so that no action goes unrecorded; free space or fix permissions, then `lab resume`", path.display())]
    Write {
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading failed.
    #[error("cannot read the journal {}: {source}", path.display())]
    Read {
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The journal is damaged somewhere other than a cut-short last line.
    #[error("the journal {} is damaged at line {line}: {reason}; resume refuses to guess: inspect the machines with `lab status` and start a new run", path.display())]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    run_id: String,
    next_seq: u64,
    /// The checksum of the last line written, which the next one chains
    /// on; `None` for a journal begun by a lab that wrote no checksums,
    /// which is continued the same way.
    last_sum: Option<String>,
}

impl Journal {
    /// Creates a new journal for `run_id` at `path` (refuses to overwrite).
    pub fn create(path: &Path, run_id: &str) -> Result<Journal, JournalError> {
        let write = |source| JournalError::Write { path: path.to_path_buf(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        let file = OpenOptions::new().append(true).create_new(true).open(path).map_err(write)?;
        Ok(Journal {
            file,
            path: path.to_path_buf(),
            run_id: run_id.to_string(),
            next_seq: 0,
            last_sum: Some(String::new()),
        })
    }

    /// Reopens an existing journal to continue it (for resume): reads it
    /// strictly, drops a cut-short last line, and appends after it.
    pub fn reopen(path: &Path) -> Result<(Journal, Vec<Record>), JournalError> {
        let Read { records, valid_len, last_sum } = read_with_len(path)?;
        let run_id = records.first().map(|r| r.run_id.clone()).ok_or_else(|| JournalError::Corrupt {
            path: path.to_path_buf(),
            line: 1,
            reason: "it holds no record".into(),
        })?;
        let write = |source| JournalError::Write { path: path.to_path_buf(), source };
        let file = OpenOptions::new().append(true).open(path).map_err(write)?;
        // Cut away a partial last line so the next record starts on its own line.
        file.set_len(valid_len).map_err(write)?;
        let next_seq = records.len() as u64;
        Ok((Journal { file, path: path.to_path_buf(), run_id, next_seq, last_sum }, records))
    }

    /// Appends every entry with one write and one fsync (the planned steps
    /// of a large run).
    pub fn append_all(&mut self, entries: Vec<Entry>) -> Result<(), JournalError> {
        let mut text = String::new();
        let mut seq = self.next_seq;
        let mut last_sum = self.last_sum.clone();
        for entry in entries {
            let entry = redacted(entry);
            let record = Record { seq, time_ms: now_ms(), run_id: self.run_id.clone(), entry };
            let (line, sum) = seal(last_sum.as_deref(), &record);
            text.push_str(&line);
            last_sum = sum;
            seq += 1;
        }
        let write = |source| JournalError::Write { path: self.path.clone(), source };
        self.file.write_all(text.as_bytes()).map_err(write)?;
        self.file.sync_data().map_err(write)?;
        self.next_seq = seq;
        self.last_sum = last_sum;
        Ok(())
    }

    /// Appends `entry`, its credentials redacted, and makes it durable
    /// before returning.
    pub fn append(&mut self, entry: Entry) -> Result<Record, JournalError> {
        let entry = redacted(entry);
        let record = Record { seq: self.next_seq, time_ms: now_ms(), run_id: self.run_id.clone(), entry };
        let (line, sum) = seal(self.last_sum.as_deref(), &record);
        let write = |source| JournalError::Write { path: self.path.clone(), source };
        self.file.write_all(line.as_bytes()).map_err(write)?;
        self.file.sync_data().map_err(write)?;
        self.next_seq += 1;
        self.last_sum = sum;
        Ok(record)
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run it belongs to.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }
}

/// Reads a journal strictly (see the module documentation).
pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
    read_with_len(path).map(|read| read.records)
}

/// A journal as read: its records, the length of its complete lines, and
/// the checksum of the last one.
struct Read {
    records: Vec<Record>,
    valid_len: u64,
    last_sum: Option<String>,
}

/// The checksum of a line's `body`, chained on the line before (`prev`).
fn chain_sum(prev: &str, body: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(body.as_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

/// The line for `record` (its JSON with the checksum as the last field,
/// and a newline) and that checksum; without one when `prev` is `None`
/// (a journal without checksums, continued as it began).
fn seal(prev: Option<&str>, record: &Record) -> (String, Option<String>) {
    let body = serde_json::to_string(record).unwrap_or_default();
    let Some(prev) = prev else { return (body + "\n", None) };
    let sum = chain_sum(prev, &body);
    let open = body.strip_suffix('}').unwrap_or(&body);
    (format!("{open},\"sum\":\"{sum}\"}}\n"), Some(sum))
}

/// A line split into its body as it was summed and its checksum.
fn unseal(line: &str) -> Option<(String, &str)> {
    let (open, sum) = line.strip_suffix("\"}")?.rsplit_once(",\"sum\":\"")?;
    Some((format!("{open}}}"), sum))
}

fn read_with_len(path: &Path) -> Result<Read, JournalError> {
    let bytes = std::fs::read(path).map_err(|source| JournalError::Read { path: path.to_path_buf(), source })?;
    let corrupt = |line: usize, reason: String| JournalError::Corrupt { path: path.to_path_buf(), line, reason };
    let mut records: Vec<Record> = Vec::new();
    let mut offset = 0usize;
    // Whether the journal carries checksums is set by its first line:
    // older versions of lab wrote none.
    let mut last_sum: Option<Option<String>> = None;
    for (index, chunk) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let complete = chunk.ends_with(b"\n");
        let text = std::str::from_utf8(chunk).map_err(|_| corrupt(index + 1, "not UTF-8".into()));
        let parsed = text.and_then(|t| {
            let t = t.trim_end();
            let (body, sum) = unseal(t).unwrap_or_else(|| (t.to_string(), ""));
            let record = serde_json::from_str::<Record>(&body)
                .map_err(|e| corrupt(index + 1, format!("not a journal record ({e})")))?;
            Ok((record, body, sum.to_string()))
        });
        match parsed {
            Ok((record, body, sum)) if complete => {
                if record.seq != records.len() as u64 {
                    return Err(corrupt(
                        index + 1,
                        format!("sequence number {} where {} was expected", record.seq, records.len()),
                    ));
                }
                if let Some(first) = records.first() {
                    if record.run_id != first.run_id {
                        return Err(corrupt(
                            index + 1,
                            format!("record of run {} in the journal of run {}", record.run_id, first.run_id),
                        ));
                    }
                }
                match (last_sum.get_or_insert_with(|| (!sum.is_empty()).then(String::new)), sum.is_empty()) {
                    (Some(_), true) => {
                        return Err(corrupt(index + 1, "the record carries no checksum: lab did not write it".into()))
                    }
                    (None, false) => {
                        return Err(corrupt(
                            index + 1,
                            "a checksummed record in a journal begun without checksums: lines from another \
                             journal were added"
                                .into(),
                        ))
                    }
                    (Some(prev), false) if sum != chain_sum(prev, &body) => {
                        return Err(corrupt(
                            index + 1,
                            "its checksum does not match: the line (or one before it) was changed after lab wrote it"
                                .into(),
                        ))
                    }
                    (Some(prev), false) => *prev = sum,
                    (None, true) => {}
                }
                records.push(record);
                offset += chunk.len();
            }
            // The last line, cut short by a crash mid-write: its record never
            // became durable, so nothing after it ran.
            _ if !complete => break,
            Ok(_) => unreachable!(),
            Err(e) => return Err(e),
        }
    }
    Ok(Read { records, valid_len: offset as u64, last_sum: last_sum.unwrap_or(Some(String::new())) })
}

/// `entry` without credentials: the journal outlives the run and is read by
/// people, so a url or command in it must not carry a password or token.
fn redacted(entry: Entry) -> Entry {
    /// Every string of the detail scrubbed; read back as the same variant
    /// (scrubbing changes no field's name or type).
    fn scrub_detail(detail: StepDetail) -> StepDetail {
        let scrubbed = scrub(serde_json::to_value(detail).unwrap_or_default());
        serde_json::from_value(scrubbed.clone()).unwrap_or(StepDetail::Other(scrubbed))
    }
    fn scrub(value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(crate::redact::redact_text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(scrub).collect()),
            Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, scrub(v))).collect()),
            other => other,
        }
    }
    match entry {
        // The detail holds the run's source, which resume must reach again
        // exactly; only the command, shown to people, is redacted.
        Entry::RunStarted { plan_hash, command, detail } => {
            Entry::RunStarted { plan_hash, command: crate::redact::redact_argv(&command), detail }
        }
        Entry::Step { step, machine, state, detail } => {
            Entry::Step { step, machine, state, detail: scrub_detail(detail) }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(machine: &str, state: StepState) -> Entry {
        Entry::Step { step: format!("reboot:{machine}"), machine: machine.into(), state, detail: StepDetail::None }
    }

    #[test]
    fn records_round_trip_and_continue_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let mut journal = Journal::create(&path, "r1").unwrap();
        journal
            .append(Entry::RunStarted {
                plan_hash: "abc".into(),
                command: vec!["reboot".into()],
                detail: RunStart::default(),
            })
            .unwrap();
        journal.append(step("a", StepState::Started)).unwrap();
        drop(journal);
        assert!(Journal::create(&path, "r1").is_err(), "never overwrites a journal");
        let (mut journal, records) = Journal::reopen(&path).unwrap();
        assert_eq!(records.len(), 2);
        journal.append(step("a", StepState::Finished)).unwrap();
        let all = read(&path).unwrap();
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(all[2].entry, step("a", StepState::Finished));
    }

    #[test]
    fn a_cut_short_last_line_is_dropped_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let mut journal = Journal::create(&path, "r1").unwrap();
        journal.append(step("a", StepState::Started)).unwrap();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"seq":1,"timeMs":5,"runId":"r1","event":"st"#).unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        let (mut journal, _) = Journal::reopen(&path).unwrap();
        journal.append(step("a", StepState::Finished)).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
    }

    #[test]
    fn credentials_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let mut journal = Journal::create(&path, "r1").unwrap();
        let command = ["deploy", "--notify", "https://u:hunter2@hooks/x?token=abc"].map(String::from).to_vec();
        journal.append(Entry::RunStarted { plan_hash: "h".into(), command, detail: RunStart::default() }).unwrap();
        let detail = StepDetail::Other(
            serde_json::json!({"error": "GET https://ops:hunter2@web/health failed", "checks": ["curl -u ops:hunter2 x"]}),
        );
        journal
            .append(Entry::Step { step: "s".into(), machine: "m".into(), state: StepState::Failed, detail })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("abc"), "{text}");
        assert!(text.contains("https://u:***@hooks/x?token=***") && text.contains("ops:***"), "{text}");
    }

    #[test]
    fn damage_in_the_middle_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let mut journal = Journal::create(&path, "r1").unwrap();
        for m in ["a", "b", "c"] {
            journal.append(step(m, StepState::Finished)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n{{garbage\n{}\n", lines[0], lines[2])).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("damaged at line 2: not a journal record"), "{err}");
        std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 2: sequence number 2 where 1 was expected"), "{err}");
    }

    #[test]
    fn an_edit_that_stays_valid_json_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let mut journal = Journal::create(&path, "r1").unwrap();
        journal.append_all(vec![step("a", StepState::Planned), step("b", StepState::Planned)]).unwrap();
        journal.append(step("a", StepState::Started)).unwrap();
        drop(journal);
        let (mut journal, records) = Journal::reopen(&path).unwrap();
        assert_eq!(records.len(), 3);
        journal.append(step("a", StepState::Failed)).unwrap();
        let original = std::fs::read_to_string(&path).unwrap();
        assert_eq!(read(&path).unwrap().len(), 4, "batches and single appends chain alike");

        // "failed" made "finished" by hand: still a valid record.
        let edited = original.replacen("\"state\":\"failed\"", "\"state\":\"finished\"", 1);
        assert_ne!(edited, original);
        std::fs::write(&path, &edited).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("damaged at line 4: its checksum does not match"), "{err}");

        // Two lines swapped and renumbered by hand: each line is a valid
        // record, but the chain ties each to the ones before it.
        let lines: Vec<&str> = original.lines().collect();
        let swapped = format!(
            "{}\n{}\n{}\n{}\n",
            lines[0],
            lines[2].replacen("\"seq\":2", "\"seq\":1", 1),
            lines[1].replacen("\"seq\":1", "\"seq\":2", 1),
            lines[3]
        );
        std::fs::write(&path, swapped).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("line 2: its checksum does not match"));

        // A line without a checksum was not written by lab.
        let (body, _) = unseal(lines[3]).unwrap();
        std::fs::write(&path, format!("{}\n{}\n{}\n{body}\n", lines[0], lines[1], lines[2])).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 4: the record carries no checksum"), "{err}");
    }

    #[test]
    fn a_journal_without_checksums_is_read_and_continued_as_it_began() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        // As an older lab wrote it: plain records, no "sum".
        let old: String = [step("a", StepState::Started), step("a", StepState::Finished)]
            .into_iter()
            .enumerate()
            .map(|(seq, entry)| {
                let record = Record { seq: seq as u64, time_ms: 1, run_id: "r0".into(), entry };
                serde_json::to_string(&record).unwrap() + "\n"
            })
            .collect();
        std::fs::write(&path, &old).unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        let (mut journal, _) = Journal::reopen(&path).unwrap();
        journal.append(step("b", StepState::Started)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"sum\""), "continued as it began: {text}");
        assert_eq!(read(&path).unwrap().len(), 3);
        // A checksummed line among them came from elsewhere.
        let other = dir.path().join("other.jsonl");
        let mut journal = Journal::create(&other, "r0").unwrap();
        journal.append_all(vec![step("x", StepState::Planned); 4]).unwrap();
        let foreign = std::fs::read_to_string(&other).unwrap().lines().nth(3).unwrap().to_string();
        std::fs::write(&path, format!("{text}{foreign}\n")).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 4: a checksummed record in a journal begun without checksums"), "{err}");
    }

    #[test]
    fn a_line_from_a_diverged_copy_of_the_same_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let mut journal = Journal::create(&a, "r1").unwrap();
        journal.append_all(vec![step("x", StepState::Planned), step("y", StepState::Planned)]).unwrap();
        drop(journal);
        // Two copies of the same run that part ways at line 3.
        let b = dir.path().join("b.jsonl");
        std::fs::copy(&a, &b).unwrap();
        for (path, state) in [(&a, StepState::Finished), (&b, StepState::Failed)] {
            let (mut journal, _) = Journal::reopen(path).unwrap();
            journal.append(step("x", state)).unwrap();
            journal.append(step("y", StepState::Started)).unwrap();
        }
        let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().map(String::from).collect::<Vec<_>>();
        let (mut spliced, theirs) = (lines(&a), lines(&b));
        // b's line 4 is a well-formed record of this run with the right
        // sequence number; only the chain says it follows another line 3.
        spliced[3] = theirs[3].clone();
        std::fs::write(&a, spliced.join("\n") + "\n").unwrap();
        let err = read(&a).unwrap_err().to_string();
        assert!(err.contains("line 4: its checksum does not match"), "{err}");
    }
}

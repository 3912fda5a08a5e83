//! Journal files: any bytes either read as records (numbered 0, 1, 2, … of
//! one run) or are refused; a journal that reads can be reopened and
//! continued, and then holds one record more.
#![no_main]

use std::sync::OnceLock;

use lab_core::store::journal::{read, Entry, Journal};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("run.jsonl");
    std::fs::write(&path, data).unwrap();
    let Ok(records) = read(&path) else { return };
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.seq, i as u64);
        assert_eq!(record.run_id, records[0].run_id);
    }
    if records.is_empty() {
        assert!(Journal::reopen(&path).is_err(), "an empty journal is refused");
        return;
    }
    let (mut journal, again) = Journal::reopen(&path).expect("a journal that reads reopens");
    assert_eq!(again, records);
    journal.append(Entry::RunFinished { outcome: lab_core::orchestrate::Outcome::Interrupted }).unwrap();
    let after = read(&path).expect("a continued journal reads");
    assert_eq!(after.len(), records.len() + 1);
    assert_eq!(&after[..records.len()], &records[..]);
});

//! `lab resume` with no run id over a state directory whose newest journal
//! is damaged: it must refuse, naming the damage, and never fall back to an
//! older interrupted run (which would be a guess about the newer one).

use lab_core::orchestrate::{resume, OrchestrateError, StateDir};
use lab_core::store::journal::{Entry, Journal, StepState};

fn interrupted_journal(state: &StateDir, run_id: &str) {
    let mut journal = Journal::create(&state.journal_path(run_id), run_id).unwrap();
    let start = Entry::RunStarted { plan_hash: "h".into(), command: vec!["reboot".into()], detail: Default::default() };
    journal.append(start).unwrap();
    for state in [StepState::Planned, StepState::Started] {
        let step =
            Entry::Step { step: "reboot/a/reboot".into(), machine: "a".into(), state, detail: Default::default() };
        journal.append(step).unwrap();
    }
}

#[test]
fn a_damaged_newest_journal_is_refused_not_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    interrupted_journal(&state, "20250101T000000.000Z-1");
    interrupted_journal(&state, "20250102T000000.000Z-2");
    let newest = state.journal_path("20250102T000000.000Z-2");
    let text = std::fs::read_to_string(&newest).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&newest, format!("{}\n{{garbage\n{}\n", lines[0], lines[2])).unwrap();
    match resume::find(&state, None) {
        Err(OrchestrateError::Journal(e)) => {
            let message = e.to_string();
            assert!(message.contains("damaged at line 2") && message.contains("refuses to guess"), "{message}");
        }
        other => panic!("resumed past a damaged journal: {other:?}"),
    }
}

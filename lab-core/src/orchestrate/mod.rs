//! Orchestration: strategies, reboot sequencing, events, journal, lock and
//! resume.

pub mod journal;
pub mod lock;

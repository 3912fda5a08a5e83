//! What a run keeps on disk, and in what form: the state directory
//! ([`dir`]), the fleet's run lock ([`lock`]), the run journal ([`journal`])
//! with its typed records ([`record`]), and what a run was asked to do, as
//! the journal keeps it ([`spec`]). Nothing here runs anything; the
//! orchestrator ([`crate::orchestrate`]) writes and reads through it.

pub mod dir;
pub mod history;
pub mod journal;
pub mod lock;
pub mod record;
pub mod spec;

/// Milliseconds since the Unix epoch: the one clock of the records lab
/// keeps (journal times, the lock's start, the time waited before a
/// reboot). The maintenance window reads local time through its own
/// injectable clock instead (`orchestrate::window_gate::Clock`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

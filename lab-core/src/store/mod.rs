//! What a run keeps on disk, and in what form: the state directory
//! ([`dir`]), the fleet's run lock ([`lock`]), the run journal ([`journal`])
//! with its typed records ([`record`]), and what a run was asked to do, as
//! the journal keeps it ([`spec`]). Nothing here runs anything; the
//! orchestrator ([`crate::orchestrate`]) writes and reads through it.

pub mod dir;
pub mod journal;
pub mod lock;
pub mod record;
pub mod spec;

//! What a run keeps on disk: the state directory ([`dir`]), the fleet's run
//! lock ([`lock`]), the run journal ([`journal`]), a run's hold on both
//! ([`session`]) and what an interrupted run had done ([`resume`]).

pub mod dir;
pub mod journal;
pub mod lock;
pub mod resume;
pub mod session;

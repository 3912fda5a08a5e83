//! lab's end-to-end test fleet: real machines in miniature.
pub mod hostlog;
pub mod layout;

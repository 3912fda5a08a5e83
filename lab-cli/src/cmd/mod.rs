//! One module per subcommand: each parses nothing and decides nothing; it
//! calls lab-core and renders.

pub mod check;
pub mod deploy;
pub mod docs;
pub mod exec;
pub mod graph;
pub mod health;
pub mod hooks_args;
pub mod machines;
pub mod orchestrate;
pub mod order_args;
pub mod plan;
pub mod reboot;
pub mod resume;
pub mod run_args;
pub mod schema;
pub mod sequence;
pub mod serve;
pub mod show;
pub mod status;

//! One module per subcommand: each parses nothing and decides nothing; it
//! calls lab-core and renders.

pub mod check;
pub mod docs;
pub mod exec;
pub mod graph;
pub mod health;
pub mod machines;
pub mod order_args;
pub mod plan;
pub mod schema;
pub mod sequence;
pub mod show;

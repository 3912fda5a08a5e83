//! One module per subcommand: each parses nothing and decides nothing; it
//! calls lab-core and renders.

pub mod exec;
pub mod health;
pub mod schema;

//! One module per subcommand: each parses nothing and decides nothing; it
//! calls lab-core and renders.

pub mod check;
pub mod machines;
pub mod schema;
pub mod show;

//! lab-cli's integration tests, as one test binary (as ripgrep's
//! tests/tests.rs): one link instead of one per file, and every test of the
//! crate run in parallel. Each module is one concern; [`util`] holds the one
//! way to run `lab`.

mod util;

mod bad_input;
mod broken_neighbours;
mod cli;
mod docs;
mod dry_run;
mod exit_codes;
mod flake_hash;
mod fleet_contract;
mod health_exec;
mod logging;
mod man_page;
mod orchestrate;
mod order;
mod pipes;
mod plan_diff;
mod plan_refusals;
mod plan_window;
mod schema;
mod selection_order;
mod serve;
mod unmanaged;
mod unmanaged_on_purpose;
mod wide_and_json;

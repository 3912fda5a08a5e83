//! `lab serve`: the dashboard, the JSON API, the live events and the
//! Prometheus metrics over HTTP (lab-serve), until interrupted.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use lab_core::graph::{ordered, Expand, Fleet, Limits};
use lab_core::orchestrate::{Builder, NixBuilder, StateDir};
use lab_serve::{ServeOptions, Server};

use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::selection;
use crate::ssh::SshArgs;

/// Options of `lab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; any but a loopback address needs --token-file.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    address: IpAddr,
    /// The port to listen on (0: any free port, printed on stderr).
    #[arg(long, value_name = "PORT", default_value_t = 9184)]
    port: u16,
    /// A file holding the bearer token every request but the page's own must carry
    /// (`Authorization: Bearer TOKEN`); required off loopback.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Probe every machine every SECONDS (the server's own pace, never per request).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Only these machines: names, @group, role:NAME, comma-separated; globs allowed.
    #[arg(long, value_name = "EXPR")]
    on: Option<String>,
    /// Machines probed at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    parallel: usize,
    /// Where journals live [default: $XDG_STATE_HOME/lab or ~/.local/state/lab].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    ssh: SshArgs,
}

/// Runs `lab serve` until Ctrl-C.
pub fn run(fleet_args: &FleetArgs, args: &ServeArgs) -> Result<Exit> {
    let runtime = tokio::runtime::Runtime::new()?;
    let options = ServeOptions {
        listen: SocketAddr::new(args.address, args.port),
        token_file: args.token_file.clone(),
        interval: Duration::from_secs(args.interval),
        parallel: args.parallel,
        state: args.state_dir.clone().map_or_else(StateDir::default_location, StateDir::new),
    };
    // Refuse a bad address or token before the (slow) evaluation.
    let server = runtime.block_on(Server::bind(options))?;
    let evaluated_at_ms = lab_core::store::now_ms();
    let evaluation = fleet_args.load()?;
    let machines = selection::select(&evaluation, args.on.as_deref())?;
    let graph = match ordered(&evaluation, args.on.as_deref(), Expand::default()) {
        Ok(graph) => graph,
        Err(e) => {
            tracing::warn!("the dependency graph is not shown: {e}");
            Fleet::new(Vec::new())?
        }
    };
    let expected = runtime.block_on(super::status::expected_systems(&fleet_args.source()?, &evaluation));
    let transport = args.ssh.transport(&evaluation.settings)?;
    let targets = lab_core::reach::reach(&transport, &machines)?;
    let fleet = lab_serve::Fleet {
        machines: targets,
        expected,
        evaluated_at_ms,
        graph,
        limits: Limits::resolve(None, None, &evaluation.settings),
        // The JSON contract has no systems: no diffs then (the route says so).
        builder: NixBuilder::new(&fleet_args.source()?).ok().map(|b| Arc::new(b) as Arc<dyn Builder>),
    };
    eprintln!("lab serve: listening on http://{}", server.local_addr());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    runtime.block_on(server.run(fleet, shutdown))?;
    runtime.block_on(transport.close());
    Ok(Exit::Success)
}

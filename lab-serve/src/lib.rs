//! lab-serve: lab's HTTP frontend, a thin layer over lab-core like the CLI
//! and the C API. It answers the fleet's status (probed on an interval the
//! server sets, never per request), its dependency graph, the runs and
//! their journals, the events of the run in progress (server-sent events,
//! tailed from the journals another `lab` process writes), Prometheus
//! metrics, and the dashboard page. Read-only: no route changes a machine.
//!
//! It listens on a loopback address unless told otherwise; on any other
//! address it refuses to start without a token file, and with one every
//! route but the page itself needs `Authorization: Bearer TOKEN` ([`auth`]).
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lab_core::graph::Limits;
use lab_core::reach::Reached;
use lab_core::store::dir::StateDir;

pub mod api;
pub mod assets;
pub mod auth;
pub mod diff;
pub mod live;
pub mod state;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where it listens (port 0: any free port, see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// The file holding the bearer token; required off loopback.
    pub token_file: Option<PathBuf>,
    /// How often the machines are probed.
    pub interval: Duration,
    /// Machines probed at once.
    pub parallel: usize,
    /// Where the runs' journals are.
    pub state: StateDir,
}

/// The fleet the server shows.
pub struct Fleet {
    /// Every machine, with its executor and prober.
    pub machines: Vec<Reached>,
    /// Each machine's evaluated system, when known.
    pub expected: BTreeMap<String, String>,
    /// When `expected` was evaluated, milliseconds since the epoch: the
    /// systems of runs started since then take its place.
    pub evaluated_at_ms: u64,
    /// The dependency graph, for `/api/graph`.
    pub graph: lab_core::graph::Fleet,
    /// The wave limits the graph is cut with.
    pub limits: Limits,
    /// Evaluates and builds the machines' new systems for `/api/diff`;
    /// `None` when the fleet's source has none (the JSON contract).
    pub builder: Option<Arc<dyn lab_core::orchestrate::Builder>>,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without a token file.
    #[error(
        "refusing to listen on {0} without a token: off loopback the dashboard, metrics and events need one; \
         pass --token-file FILE (a file holding a random token), or listen on 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    /// The token file could not be read or is empty.
    #[error("cannot use the token file {}: {reason}; write a random token into it (e.g. `openssl rand -hex 32 > FILE`)", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (never its content).
        reason: String,
    },
    /// Binding or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A server bound to its address, not yet answering.
pub struct Server {
    listener: tokio::net::TcpListener,
    token: Option<auth::Token>,
    options: ServeOptions,
}

impl Server {
    /// Checks the options (a token off loopback), reads the token and binds.
    pub async fn bind(options: ServeOptions) -> Result<Server, ServeError> {
        let token = auth::Token::for_address(options.listen, options.token_file.as_deref())?;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Listen { addr: options.listen, source })?;
        Ok(Server { listener, token, options })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.options.listen)
    }

    /// Probes `fleet` every interval, follows the journals and answers
    /// until `shutdown` completes.
    pub async fn run(
        self,
        fleet: Fleet,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let addr = self.local_addr();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let shared = Arc::new(state::Shared::new(fleet, &self.options, stopping));
        let tasks = state::start(shared.clone());
        let app = api::router(shared, self.token);
        let shutdown = async move {
            shutdown.await;
            let _ = stop.send(true);
        };
        let result = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        tasks.stop();
        result.map_err(|source| ServeError::Listen { addr, source })
    }
}

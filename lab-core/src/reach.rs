//! Reaching machines over ssh: the one place that builds, for each machine
//! a command acts on, its executor and the prober that runs its health
//! checks through that executor (`lab health`, `lab exec`, `lab status`,
//! the C API, and runs).

use std::sync::Arc;

use crate::exec::{ExecError, Executor, SshOptions, SshTransport};
use crate::health::{HttpClients, MachineProber};
use crate::metadata::Machine;
use crate::settings::FleetSettings;

/// One machine as a command reaches it.
#[derive(Debug, Clone)]
pub struct Reached {
    /// The machine.
    pub machine: Machine,
    /// Runs commands on it (over the transport's multiplexed connection).
    pub executor: Arc<dyn Executor>,
    /// Runs its health checks, on the machine through `executor` or from
    /// the controller, as each check says.
    pub prober: Arc<MachineProber>,
}

/// The ssh options a frontend gives (its flags or request fields), then the
/// fleet's `lab.ssh.options`: ssh takes the first value of an option, so
/// the caller's win.
pub fn ssh_options(mut given: SshOptions, settings: &FleetSettings) -> SshOptions {
    given.options.extend(settings.ssh.options.iter().cloned());
    given
}

/// A transport for `options`: one multiplexed connection per machine,
/// closed by [`SshTransport::close`].
pub fn transport(options: SshOptions) -> Result<SshTransport, ExecError> {
    SshTransport::new(options).map_err(|source| ExecError::Spawn {
        machine: String::new(),
        program: "ssh (its private control directory)".into(),
        source,
    })
}

/// Each of `machines` with its executor over `transport` and its prober
/// (one HTTP client set shared by all), in the order given. A machine
/// whose target cannot be reached by ssh (a bad host, user or port) is an
/// error naming it.
pub fn reach<'a>(
    transport: &SshTransport,
    machines: impl IntoIterator<Item = &'a Machine>,
) -> Result<Vec<Reached>, ExecError> {
    reach_with(machines, |machine| Ok(Arc::new(transport.executor(machine)?) as Arc<dyn Executor>))
}

/// Each of `machines` with the executor `executor` makes for it (a dry
/// run's recording executor, a test's simulator) and its prober through
/// that executor (one HTTP client set shared by all), in the order given;
/// the first error `executor` returns ends it.
pub fn reach_with<'a, E>(
    machines: impl IntoIterator<Item = &'a Machine>,
    mut executor: impl FnMut(&Machine) -> Result<Arc<dyn Executor>, E>,
) -> Result<Vec<Reached>, E> {
    let clients = HttpClients::default();
    machines
        .into_iter()
        .map(|machine| {
            let executor = executor(machine)?;
            let prober = Arc::new(MachineProber::new(machine, executor.clone(), clients.clone()));
            Ok(Reached { machine: machine.clone(), executor, prober })
        })
        .collect()
}

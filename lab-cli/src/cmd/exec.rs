//! `lab exec`: run a command on machines in parallel.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use futures_util::future::join_all;
use lab_core::exec::Cmd;
use tokio::sync::Semaphore;

use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::selection;
use crate::ssh::SshArgs;

/// Options of `lab exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Machines to run on (comma-separated names).
    #[arg(long, value_name = "MACHINES", required = true)]
    on: String,
    /// Seconds after which the command is stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
    /// Machines at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    parallel: usize,
    #[command(flatten)]
    ssh: SshArgs,
    /// The command and its arguments, after `--`; passed as an argv, not through a local shell.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Runs `lab exec`. Output is printed machine by machine, in name order,
/// every line prefixed by `NAME | `.
pub fn run(fleet: &FleetArgs, args: &ExecArgs) -> Result<Exit> {
    let evaluation = fleet.load()?;
    let machines = selection::select(&evaluation, Some(&args.on))?;
    let transport = args.ssh.transport(&evaluation.settings)?;
    let executors = lab_core::reach::reach(&transport, &machines)?;
    let cmd = Cmd::new(args.command.clone()).timeout(Duration::from_secs(args.timeout));
    let runtime = tokio::runtime::Runtime::new()?;
    let results = runtime.block_on(async {
        let permits = Semaphore::new(args.parallel.max(1));
        let runs = executors.iter().map(|executor| async {
            let _permit = permits.acquire().await.ok();
            executor.executor.run(&cmd).await
        });
        let results = join_all(runs).await;
        transport.close().await;
        results
    });
    let width = machines.iter().map(|m| m.name.chars().count()).max().unwrap_or(0);
    let (mut out, mut err) = (crate::out::Stdout, std::io::stderr().lock());
    let mut failed = false;
    for (machine, result) in machines.iter().zip(results) {
        let prefix = format!("{:width$} | ", machine.name);
        match result {
            Ok(output) => {
                for line in output.stdout_text().lines() {
                    writeln!(out, "{prefix}{line}")?;
                }
                for line in output.stderr_text().lines() {
                    writeln!(err, "{prefix}{line}")?;
                }
                if !output.success() {
                    failed = true;
                    let how = output.status.map_or("killed by a signal".to_string(), |c| format!("exit code {c}"));
                    writeln!(err, "{prefix}failed ({how})")?;
                }
            }
            Err(e) => {
                failed = true;
                writeln!(err, "{prefix}error: {e}")?;
            }
        }
    }
    Ok(Exit::clean_if(!failed))
}

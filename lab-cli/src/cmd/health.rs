//! `lab health`: run every check once, on the machines (or `--local`ly).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lab_core::health::{check_machines, check_once, CheckResult, HttpClients, LocalProber, Via};
use lab_core::metadata::{parse_machine, RunOn};

use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::ssh::SshArgs;
use crate::{render, selection};

/// Where `lab health --local` reads the machine's checks by default.
const DEFAULT_METADATA: &str = "/etc/lab-machine-metadata.json";

/// Options of `lab health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Machines to check (comma-separated names; default: all).
    #[arg(long, value_name = "MACHINES", conflicts_with = "local")]
    on: Option<String>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Check the machine lab runs on, from its metadata file; prints JSON.
    #[arg(long)]
    local: bool,
    /// The metadata file for --local (`-` reads standard input) [default: /etc/lab-machine-metadata.json].
    #[arg(long, value_name = "PATH", requires = "local")]
    metadata: Option<PathBuf>,
    /// Checks attempted at once.
    #[arg(long, value_name = "N", default_value_t = lab_core::health::DEFAULT_CONCURRENCY)]
    parallel: usize,
    #[command(flatten)]
    ssh: SshArgs,
}

/// Runs `lab health`.
pub fn run(fleet: &FleetArgs, args: &HealthArgs) -> Result<Exit> {
    let runtime = tokio::runtime::Runtime::new()?;
    let reports = if args.local { runtime.block_on(local(args))? } else { runtime.block_on(remote(fleet, args))? };
    if args.json || args.local {
        render::print_json(&reports)?;
    } else {
        crate::out::print(table(&reports))?;
    }
    Ok(Exit::clean_if(lab_core::health::is_clean(&reports)))
}

async fn remote(fleet: &FleetArgs, args: &HealthArgs) -> Result<Vec<CheckResult>> {
    let evaluation = fleet.load()?;
    let machines = selection::select(&evaluation, args.on.as_deref())?;
    Ok(check_machines(&machines, args.ssh.options(&evaluation.settings), args.parallel).await?)
}

async fn local(args: &HealthArgs) -> Result<Vec<CheckResult>> {
    let path = args.metadata.clone().unwrap_or_else(|| DEFAULT_METADATA.into());
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the metadata from standard input")?;
        text
    } else {
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let name = value.get("hostname").and_then(|h| h.as_str()).unwrap_or("localhost").to_string();
    let file = (path.as_os_str() != "-").then_some(path.as_path());
    let machine = parse_machine(&name, value, file)?;
    let checks: Vec<_> =
        machine.metadata.health_checks.iter().filter(|c| c.common().run_on == RunOn::Target).cloned().collect();
    let prober = LocalProber::new(HttpClients::default(), Via::Local);
    Ok(check_once(&prober, &machine.name, &checks).await)
}

fn table(reports: &[CheckResult]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let result = match (r.passed, r.required) {
                (true, _) => "ok",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            vec![
                r.machine.clone(),
                r.check.clone(),
                result.to_string(),
                format!("{} ms", r.latency_ms),
                r.via.to_string(),
                r.message.replace('\n', " "),
            ]
        })
        .collect();
    render::table(&["MACHINE", "CHECK", "RESULT", "LATENCY", "VIA", "MESSAGE"], &rows)
}

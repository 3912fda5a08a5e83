//! `lab status`: one row per machine; exit 0 only when every machine is
//! reachable, healthy and not outdated, so it serves as a monitoring probe.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use lab_core::eval::{Evaluation, Source};
use lab_core::orchestrate::{Builder, NixBuilder, StateDir};
use lab_core::status::{probe, Generation, MachineStatus, ANSWER_WITHIN};

use crate::exit::Exit;
use crate::fleet::FleetArgs;
use crate::ssh::SshArgs;
use crate::{render, selection};

/// Options of `lab status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these machines: names, @group, role:NAME, comma-separated; globs allowed.
    #[arg(long, value_name = "EXPR")]
    on: Option<String>,
    /// Print the statuses as JSON.
    #[arg(long)]
    json: bool,
    /// Refresh every SECONDS (on a terminal, in place) until interrupted.
    #[arg(long, value_name = "SECONDS")]
    watch: Option<u64>,
    /// Call the fleet's notification hooks for every machine that is unreachable or unhealthy.
    #[arg(long)]
    alert: bool,
    /// Machines read at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    parallel: usize,
    /// Also write the machines' Prometheus gauges to FILE, atomically (for node_exporter's textfile collector).
    #[arg(long, value_name = "FILE")]
    prometheus: Option<PathBuf>,
    /// Where journals live [default: $XDG_STATE_HOME/lab or ~/.local/state/lab].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    ssh: SshArgs,
}

/// Runs `lab status`.
pub fn run(fleet: &FleetArgs, args: &StatusArgs) -> Result<Exit> {
    let runtime = tokio::runtime::Runtime::new()?;
    let evaluated_at = lab_core::store::now_ms();
    let evaluation = fleet.load()?;
    let expected = runtime.block_on(expected_systems(&fleet.source()?, &evaluation));
    loop {
        let statuses = runtime.block_on(gather(&evaluation, (&expected, evaluated_at), args))?;
        if let Some(path) = &args.prometheus {
            let now = lab_core::store::now_ms();
            lab_core::metrics::write_atomic(path, &lab_core::metrics::machine_metrics(&statuses, now, now)?)?;
        }
        if args.alert {
            runtime.block_on(alert(&evaluation, &statuses));
        }
        let Some(seconds) = args.watch else {
            show(&statuses, args.json)?;
            return Ok(Exit::clean_if(statuses.iter().all(MachineStatus::is_ok)));
        };
        if std::io::stdout().is_terminal() {
            // Clear the screen and go home: refresh in place.
            crate::out::print("\x1b[H\x1b[2J")?;
        }
        show(&statuses, args.json)?;
        std::thread::sleep(Duration::from_secs(seconds.max(1)));
    }
}

/// Each machine's evaluated system, without building; none for the JSON
/// contract or when the systems do not evaluate (then generations are unknown).
pub(crate) async fn expected_systems(source: &Source, evaluation: &Evaluation) -> BTreeMap<String, String> {
    let Ok(builder) = NixBuilder::new(source) else { return BTreeMap::new() };
    let names: Vec<String> = evaluation.machines.keys().cloned().collect();
    match builder.dry_run().instantiate(&names).await {
        Ok(systems) => systems.into_iter().map(|(name, system)| (name, system.out_path)).collect(),
        Err(e) => {
            tracing::warn!("cannot evaluate the machines' systems, generations are unknown: {e}");
            BTreeMap::new()
        }
    }
}

async fn gather(
    evaluation: &Evaluation,
    (expected, evaluated_at): (&BTreeMap<String, String>, u64),
    args: &StatusArgs,
) -> Result<Vec<MachineStatus>> {
    let machines = selection::select(evaluation, args.on.as_deref())?;
    let transport = args.ssh.transport(&evaluation.settings)?;
    let targets = lab_core::reach::reach(&transport, &machines)?;
    let state = args.state_dir.clone().map_or_else(StateDir::default_location, StateDir::new);
    let history = lab_core::store::history::History::read(&state);
    let statuses = probe(&targets, expected, evaluated_at, &history, args.parallel, ANSWER_WITHIN).await;
    transport.close().await;
    Ok(statuses)
}

/// One event per machine in trouble, to every configured hook.
async fn alert(evaluation: &Evaluation, statuses: &[MachineStatus]) {
    let notify = &evaluation.settings.notify;
    if notify.is_empty() {
        tracing::warn!("--alert: the fleet configures no notification hook (lab.notify)");
        return;
    }
    // Which machines and what the event says: lab-core's (MachineStatus::alert).
    for event in statuses.iter().filter_map(|s| s.alert()) {
        for outcome in notify.deliver(&event.to_json()).await {
            if let Some(error) = outcome.error {
                tracing::warn!("notification hook {} failed: {error}", outcome.hook);
            }
        }
    }
}

fn show(statuses: &[MachineStatus], json: bool) -> Result<()> {
    if json {
        return render::print_json(&statuses);
    }
    let rows: Vec<Vec<String>> = statuses.iter().map(row).collect();
    crate::out::print(render::table(
        &["MACHINE", "REACHABLE", "HEALTH", "SYSTEM", "REBOOT", "UPTIME", "LAST RUN"],
        &rows,
    ))?;
    Ok(())
}

fn row(s: &MachineStatus) -> Vec<String> {
    let health = match (s.healthy, s.failing.first()) {
        (None, _) => "-".to_string(),
        (Some(true), _) => "healthy".to_string(),
        (Some(false), Some(first)) => format!("FAILING ({})", first.replace('\n', " ")),
        (Some(false), None) => "FAILING".to_string(),
    };
    let system = match s.generation {
        Generation::UpToDate => "up to date",
        Generation::Outdated => "OUTDATED",
        Generation::Unknown => "unknown",
    };
    let reboot = match (&s.needs_reboot, s.reachable) {
        (_, false) => "-".to_string(),
        (Some(_), true) => "needed".to_string(),
        (None, true) => "no".to_string(),
    };
    let uptime = s.uptime_seconds.map_or("-".to_string(), lab_core::plan::format_duration);
    let last = s.last_run.as_ref().map_or("-".to_string(), |l| {
        format!(
            "{} {} ({})",
            l.step,
            serde_json::to_value(l.state).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
            l.run_id
        )
    });
    let reachable = if s.reachable { "yes".to_string() } else { format!("NO ({})", s.error.as_deref().unwrap_or("?")) };
    vec![s.machine.clone(), reachable, health, system.to_string(), reboot, uptime, last]
}

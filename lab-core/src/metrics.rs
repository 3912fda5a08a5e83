//! The fleet as Prometheus metrics, in the text format 0.0.4 (what
//! Prometheus scrapes and node_exporter's textfile collector reads),
//! written by the `prometheus` crate's encoder: per machine, from its
//! [`MachineStatus`]; per run, from the journals' [`History`].
//!
//! Every machine series carries the labels `machine`, `role`, `groups` (the
//! machine's groups, sorted, comma-separated: one label) and `criticality`.
//! A value that is not known is left out rather than guessed: an
//! unreachable machine has no uptime, no reboot verdict and no checks; a
//! machine whose system was not evaluated has no `lab_machine_up_to_date`.
//! Both `lab serve` (`/metrics`) and `lab status --prometheus FILE` render here.

use std::io::Write;
use std::path::{Path, PathBuf};

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::plan::Action;
use crate::status::{Generation, MachineStatus};
use crate::store::history::History;
use crate::store::journal::StepState;
use crate::store::record::Outcome;

/// The content type of the text this module renders.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the step duration histogram, in seconds: from a quick
/// health check to an hour-long build.
pub const DURATION_BUCKETS: [f64; 12] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

const MACHINE_LABELS: [&str; 4] = ["machine", "role", "groups", "criticality"];

/// Why the metrics could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The encoder refused a metric (a bug in lab: names and labels are fixed).
    #[error("cannot render the metrics: {0}")]
    Encode(#[from] prometheus::Error),
    /// The file (or its temporary sibling) could not be written.
    #[error("cannot write the metrics file {}: {source}; check that its directory exists and is writable", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The machine gauges of `statuses`, probed at `probed_at_ms` (milliseconds
/// since the epoch); ages are counted to `now_ms`. What `lab status
/// --prometheus` writes.
pub fn machine_metrics(statuses: &[MachineStatus], probed_at_ms: u64, now_ms: u64) -> Result<String, MetricsError> {
    let registry = Registry::new();
    register_machines(&registry, statuses, probed_at_ms, now_ms)?;
    Ok(TextEncoder::new().encode_to_string(&registry.gather())?)
}

/// The machine gauges, then the runs' counters, gauges and step duration
/// histogram from `history`. What `lab serve` answers on `/metrics`.
pub fn fleet_metrics(
    statuses: &[MachineStatus],
    probed_at_ms: Option<u64>,
    history: &History,
    now_ms: u64,
) -> Result<String, MetricsError> {
    let registry = Registry::new();
    if let Some(probed_at_ms) = probed_at_ms {
        register_machines(&registry, statuses, probed_at_ms, now_ms)?;
    }
    register_runs(&registry, history)?;
    Ok(TextEncoder::new().encode_to_string(&registry.gather())?)
}

/// Writes `text` to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`, so a reader (the textfile
/// collector) never sees half a file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), MetricsError> {
    let write = |source| MetricsError::Write { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".lab-metrics").suffix(".tmp").tempfile_in(dir).map_err(write)?;
    file.write_all(text.as_bytes()).map_err(write)?;
    file.as_file().sync_all().map_err(write)?;
    // node_exporter runs as its own user: the file is for reading by all.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(write)?;
    }
    file.persist(path).map_err(|e| write(e.error))?;
    Ok(())
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, MetricsError> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, MetricsError> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn register_machines(
    registry: &Registry,
    statuses: &[MachineStatus],
    probed_at_ms: u64,
    now_ms: u64,
) -> Result<(), MetricsError> {
    let m = &MACHINE_LABELS;
    let mut check_labels = MACHINE_LABELS.to_vec();
    check_labels.extend(["check", "index", "required"]);
    let reachable = gauge(
        registry,
        "lab_machine_reachable",
        "Whether the machine answered over ssh at the last probe (1) or not (0).",
        m,
    )?;
    let healthy = gauge(
        registry,
        "lab_machine_healthy",
        "Whether the machine passed every required health check at the last probe (1) or not, or was not reached (0).",
        m,
    )?;
    let check = gauge(
        registry,
        "lab_machine_health_check_passed",
        "Whether one health check of the machine passed at the last probe (1) or not (0); absent when the machine was not reached.",
        &check_labels,
    )?;
    let up_to_date = gauge(
        registry,
        "lab_machine_up_to_date",
        "Whether the machine runs the system its configuration evaluates to (1) or another (0); absent when not known.",
        m,
    )?;
    let reboot = gauge(
        registry,
        "lab_machine_reboot_required",
        "Whether the machine's booted kernel, initrd or modules differ from its boot default (1) or not (0); absent when not reached.",
        m,
    )?;
    let uptime =
        gauge(registry, "lab_machine_uptime_seconds", "Seconds since the machine booted, at the last probe.", m)?;
    let deploy_time = gauge(
        registry,
        "lab_machine_last_deploy_timestamp_seconds",
        "When the machine's last successful deploy by lab ended, seconds since the Unix epoch (from the journals).",
        m,
    )?;
    let deploy_age = gauge(
        registry,
        "lab_machine_last_deploy_age_seconds",
        "Seconds since the machine's last successful deploy by lab ended.",
        m,
    )?;
    let reboot_time = gauge(
        registry,
        "lab_machine_last_reboot_timestamp_seconds",
        "When the machine's last successful reboot by lab ended, seconds since the Unix epoch (from the journals).",
        m,
    )?;
    let reboot_age = gauge(
        registry,
        "lab_machine_last_reboot_age_seconds",
        "Seconds since the machine's last successful reboot by lab ended.",
        m,
    )?;
    let probed = gauge(
        registry,
        "lab_status_probe_timestamp_seconds",
        "When the machines were last probed, seconds since the Unix epoch.",
        &[],
    )?;
    probed.with_label_values::<&str>(&[]).set(seconds(probed_at_ms));
    for s in statuses {
        let mut groups = s.groups.clone();
        groups.sort();
        let groups = groups.join(",");
        let criticality = serde_json::to_value(s.criticality).ok().and_then(|v| v.as_str().map(String::from));
        let criticality = criticality.unwrap_or_default();
        let labels = [s.machine.as_str(), s.role.as_str(), groups.as_str(), criticality.as_str()];
        reachable.with_label_values(&labels).set(bool_value(s.reachable));
        healthy.with_label_values(&labels).set(bool_value(s.healthy == Some(true)));
        for c in &s.checks {
            let index = c.index.to_string();
            let required = if c.required { "true" } else { "false" };
            let mut l = labels.to_vec();
            l.extend([c.check.as_str(), index.as_str(), required]);
            check.with_label_values(&l).set(bool_value(c.passed));
        }
        match s.generation {
            Generation::UpToDate => up_to_date.with_label_values(&labels).set(1.0),
            Generation::Outdated => up_to_date.with_label_values(&labels).set(0.0),
            Generation::Unknown => {}
        }
        if s.reachable {
            reboot.with_label_values(&labels).set(bool_value(s.needs_reboot.is_some()));
        }
        if let Some(up) = s.uptime_seconds {
            uptime.with_label_values(&labels).set(up as f64);
        }
        if let Some(ms) = s.last_deploy_ms {
            deploy_time.with_label_values(&labels).set(seconds(ms));
            deploy_age.with_label_values(&labels).set(seconds(now_ms.saturating_sub(ms)));
        }
        if let Some(ms) = s.last_reboot_ms {
            reboot_time.with_label_values(&labels).set(seconds(ms));
            reboot_age.with_label_values(&labels).set(seconds(now_ms.saturating_sub(ms)));
        }
    }
    Ok(())
}

fn state_name(state: StepState) -> &'static str {
    match state {
        StepState::Planned => "planned",
        StepState::Started => "started",
        StepState::Finished => "finished",
        StepState::Failed => "failed",
        StepState::RolledBack => "rolled-back",
        StepState::Skipped => "skipped",
    }
}

fn register_runs(registry: &Registry, history: &History) -> Result<(), MetricsError> {
    let steps = counter(
        registry,
        "lab_steps_total",
        "Steps of lab's runs that ended, by what they did (action) and how they ended (outcome), from the journals.",
        &["action", "outcome"],
    )?;
    for ((action, state), count) in &history.steps {
        steps.with_label_values(&[action.name(), state_name(*state)]).inc_by(*count);
    }
    let rollbacks = counter(
        registry,
        "lab_rollbacks_total",
        "Times lab rolled a machine back to its previous generation, from the journals.",
        &["machine"],
    )?;
    for (machine, h) in &history.machines {
        if h.rollbacks > 0 {
            rollbacks.with_label_values(&[machine.as_str()]).inc_by(h.rollbacks);
        }
    }
    let runs = counter(
        registry,
        "lab_runs_total",
        "lab's runs that ended, by command and outcome, from the journals.",
        &["command", "outcome"],
    )?;
    for run in &history.runs {
        if let Some(outcome) = run.outcome {
            runs.with_label_values(&[run.kind.as_str(), outcome.name()]).inc();
        }
    }
    if let Some(last) = history.last_finished() {
        let time = gauge(
            registry,
            "lab_last_run_timestamp_seconds",
            "When lab's last run ended, seconds since the Unix epoch.",
            &[],
        )?;
        time.with_label_values::<&str>(&[]).set(seconds(last.finished_ms.unwrap_or_default()));
        let outcome = gauge(
            registry,
            "lab_last_run_outcome",
            "How lab's last run ended: 1 for its outcome, 0 for the others.",
            &["outcome"],
        )?;
        for o in [Outcome::Success, Outcome::Failed, Outcome::Interrupted] {
            outcome.with_label_values(&[o.name()]).set(bool_value(last.outcome == Some(o)));
        }
    }
    let durations = HistogramVec::new(
        HistogramOpts::new(
            "lab_step_duration_seconds",
            "How long the steps of lab's runs took, from start to end, by what they did (action), from the journals.",
        )
        .buckets(DURATION_BUCKETS.to_vec()),
        &["action"],
    )?;
    registry.register(Box::new(durations.clone()))?;
    for d in &history.durations {
        durations.with_label_values(&[d.action.name()]).observe(d.seconds);
    }
    // Every action has its series, so a rate over a kind never seen is 0, not absent.
    for action in ALL_ACTIONS {
        let _ = durations.with_label_values(&[action.name()]);
    }
    Ok(())
}

const ALL_ACTIONS: [Action; 9] = [
    Action::CheckReboot,
    Action::Wait,
    Action::Reboot,
    Action::WaitForBoot,
    Action::HealthChecks,
    Action::Build,
    Action::Copy,
    Action::Activate,
    Action::Commit,
];

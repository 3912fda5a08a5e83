//! Rendering a run's events: progress bars on a terminal (a line per
//! machine in flight, overall progress, elapsed time), plain log lines
//! otherwise, JSON lines with `--json`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lab_core::exec::{quote_argv, DryRunAction};
use lab_core::orchestrate::{Event, SkipReason};
use tokio::sync::mpsc::UnboundedReceiver;

/// How events are shown.
pub struct Progress {
    json: bool,
    total: usize,
}

impl Progress {
    /// A renderer for a run of `total` steps (0: taken from the run's
    /// `run-started` event).
    pub fn new(json: bool, total: usize) -> Self {
        Progress { json, total }
    }

    /// Renders events until the run drops its sender. When stdout cannot
    /// be written (its reader closed it), the events are still drained but
    /// no longer printed: a run in flight is never cut short, nor left
    /// blocked, because nobody reads its log; its exit code still says how
    /// it ended.
    pub async fn consume(self, mut rx: UnboundedReceiver<Event>) {
        let start = Instant::now();
        let mut printing = true;
        if self.json {
            while let Some(event) = rx.recv().await {
                if let (true, Ok(line)) = (printing, serde_json::to_string(&event)) {
                    printing = crate::out::println(line).is_ok();
                }
            }
            return;
        }
        if !std::io::stderr().is_terminal() {
            while let Some(event) = rx.recv().await {
                if let (true, Some(line)) = (printing, line(&event)) {
                    printing =
                        crate::out::println(format_args!("[{:>7.1}s] {line}", start.elapsed().as_secs_f64())).is_ok();
                }
            }
            return;
        }
        let bars = MultiProgress::new();
        let overall = bars.add(ProgressBar::new(self.total as u64));
        overall.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        overall.enable_steady_tick(Duration::from_millis(200));
        let spinner = ProgressStyle::with_template("  {spinner} {prefix:.bold} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let mut machines: BTreeMap<String, ProgressBar> = BTreeMap::new();
        while let Some(event) = rx.recv().await {
            if let Some(text) = line(&event) {
                let _ = bars.println(text);
            }
            match &event {
                Event::RunStarted { steps, .. } if self.total == 0 => overall.set_length(*steps as u64),
                Event::StepStarted { machine, message, step, .. } => {
                    let bar = machines.entry(machine.clone()).or_insert_with(|| {
                        let bar = bars.add(ProgressBar::new_spinner());
                        bar.set_style(spinner.clone());
                        bar.set_prefix(machine.clone());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    });
                    bar.set_message(format!("{step}: {message}"));
                }
                Event::StepFinished { .. } | Event::StepFailed { .. } | Event::Skipped { .. } => overall.inc(1),
                Event::MachineHealthy { machine, .. } | Event::RolledBack { machine, .. } => {
                    if let Some(bar) = machines.remove(machine) {
                        bar.finish_and_clear();
                    }
                }
                Event::RunFinished { .. } => {
                    for bar in machines.values() {
                        bar.finish_and_clear();
                    }
                    machines.clear();
                    overall.finish_and_clear();
                }
                _ => {}
            }
        }
    }
}

/// One event as a log line; `None` for events only bars show.
fn line(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted { run_id, command, machines, steps, resumed, journal, .. } => {
            let verb = if *resumed { "resuming" } else { "starting" };
            format!("{verb} {command} run {run_id}: {machines} machine(s), {steps} step(s); journal {journal}")
        }
        Event::Notice { message } => format!("note: {message}"),
        Event::WaveStarted { phase, wave, machines } => {
            format!("{} wave {wave}: {}", phase.name(), machines.join(", "))
        }
        Event::StepStarted { step, message, .. } => format!("{step}: {message}"),
        Event::StepFinished { step, message, .. } => format!("{step}: done: {message}"),
        Event::StepFailed { step, error, .. } => format!("{step}: FAILED: {error}"),
        Event::RolledBack { machine, reason, system, healthy } => format!(
            "{machine}: ROLLED BACK to {system} ({}): {reason}",
            if *healthy { "healthy again" } else { "not healthy" }
        ),
        Event::Skipped { step, reason: SkipReason::AlreadyDone, .. } => format!("{step}: already done"),
        Event::Skipped { step, reason, .. } => format!("{step}: skipped: {reason}"),
        Event::MachineHealthy { machine, .. } => format!("{machine}: healthy"),
        Event::RunFinished { summary, .. } => summary.clone(),
    })
}

/// A dry-run action as one line: the machine and the exact command.
pub fn action_line(action: &DryRunAction) -> String {
    match action {
        DryRunAction::Run { machine, argv } => format!("[{machine}] $ {}", quote_argv(argv)),
        DryRunAction::CopyClosure { machine, store_path, .. } => format!("[{machine}] copy closure {store_path}"),
        DryRunAction::BootId { machine } => format!("[{machine}] read boot id"),
        DryRunAction::Reboot { machine } => format!("[{machine}] $ reboot"),
        DryRunAction::WaitForBoot { machine } => format!("[{machine}] wait for a new boot id"),
    }
}

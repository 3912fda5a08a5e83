//! lab-core as a library: load a fleet, print its reboot sequence, and run
//! a reboot through the real orchestrator with a custom [`Executor`] that
//! prints each command instead of reaching any machine.
//!
//! ```text
//! cargo run -p lab-core --example fleet                  # hosts/fleet.nix
//! cargo run -p lab-core --example fleet -- fleet.json    # the JSON contract
//! ```
//!
//! lab-core/tests/example_rust.rs runs [`run`] the same way.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use lab_core::eval::{evaluate, EvalOptions, Source};
use lab_core::exec::{quote_argv, Cmd, CopyOptions, ExecError, Executor, Output};
use lab_core::graph::{Fleet, Limits};
use lab_core::orchestrate::{
    by_name, execute, prepare, CancelToken, Escalation, Event, Events, Report, RunKind, RunSpec, Runtime,
};
use lab_core::reach::reach_with;

/// An executor that prints what it is asked to do and simulates boots: the
/// boot id changes with every reboot, so the orchestrator sees each machine
/// come back.
#[derive(Debug)]
struct PrintingExecutor {
    machine: String,
    boots: AtomicU64,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl PrintingExecutor {
    fn say(&self, what: String) {
        self.lines.lock().unwrap().push(format!("  [{}] {what}", self.machine));
    }
}

#[async_trait]
impl Executor for PrintingExecutor {
    fn machine(&self) -> &str {
        &self.machine
    }

    async fn run(&self, cmd: &Cmd) -> Result<Output, ExecError> {
        self.say(format!("$ {}", quote_argv(&cmd.argv)));
        if cmd.argv.last().is_some_and(|a| a == "reboot") {
            // A reboot through sudo, for a non-root target user.
            self.boots.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Output { status: Some(0), ..Output::default() })
    }

    async fn copy_closure(&self, store_path: &str, _options: &CopyOptions) -> Result<(), ExecError> {
        self.say(format!("copy {store_path}"));
        Ok(())
    }

    async fn boot_id(&self) -> Result<String, ExecError> {
        Ok(format!("{}-boot-{}", self.machine, self.boots.load(Ordering::SeqCst)))
    }

    async fn reboot(&self) -> Result<(), ExecError> {
        self.say("$ reboot".into());
        self.boots.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Loads `fleet` (a Nix file, or a `.json` file of the JSON contract),
/// prints its reboot sequence, then reboots it with printing executors
/// through lab's orchestrator (as a dry run: no delays, no health waits).
pub async fn run(fleet: &Path, out: &mut impl Write) -> Result<Report, Box<dyn std::error::Error>> {
    let source = if fleet.extension().is_some_and(|e| e == "json") {
        Source::JsonFile(fleet.to_path_buf())
    } else {
        Source::File(fleet.to_path_buf())
    };
    let evaluation = evaluate(&source, &EvalOptions::default())?;
    let limits = Limits {
        max_parallel: evaluation.settings.max_parallel.unwrap_or(std::num::NonZeroUsize::MIN),
        ..Limits::default()
    };

    writeln!(out, "Reboot sequence:")?;
    for entry in Fleet::from_map(&evaluation.machines)?.sequence(&limits) {
        writeln!(out, "  {}. {} (wave {})", entry.position, entry.machine, entry.wave)?;
    }

    let mut spec = RunSpec::new(RunKind::Reboot, &source);
    spec.limits = limits;
    let prepared = prepare(&spec, &evaluation, None).await?;
    let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
    let reached = reach_with(prepared.fleet.machines(), |m| {
        let exec = PrintingExecutor { machine: m.name.clone(), boots: AtomicU64::new(0), lines: lines.clone() };
        Ok::<_, std::convert::Infallible>(Arc::new(exec) as Arc<dyn Executor>)
    });
    let (executors, probers) = by_name(reached.unwrap_or_else(|never| match never {}));
    let (events, mut rx) = Events::channel();
    let rt = Runtime {
        executors,
        probers,
        builder: None,
        escalation: Escalation::default(),
        events,
        cancel: CancelToken::new(),
        dry_run: true,
        // No notification hooks and no maintenance window for a demonstration.
        notify: Default::default(),
        window: None,
    };
    let report = execute(&prepared, &rt, "example", None, Default::default()).await?;
    drop(rt);

    writeln!(out, "Reboot (nothing leaves this process):")?;
    for line in lines.lock().unwrap().iter() {
        writeln!(out, "{line}")?;
    }
    while let Some(event) = rx.recv().await {
        if let Event::RunFinished { summary, .. } = event {
            writeln!(out, "{summary}")?;
        }
    }
    Ok(report)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fleet = std::env::args().nth(1).unwrap_or_else(|| "hosts/fleet.nix".into());
    run(Path::new(&fleet), &mut std::io::stdout()).await?;
    Ok(())
}

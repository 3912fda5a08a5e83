//! Driving a whole run for a frontend: evaluate (after `nix flake update`
//! when asked), fill in the limits from the fleet's settings, prepare, then
//! either show it (dry run: recording executors, and the flake update only
//! listed, never run) or take the lock, open the journal and execute it
//! over ssh. The CLI and the C ABI both call
//! [`start`] and [`resume`]; they only render the events and the result.

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::Arc;

use serde_json::{json, Value};

use super::error::OrchestrateError;
use super::events::{Event, Events};
use super::prepare::{prepare, Prepared};
use super::report::Report;
use super::run::execute;
use super::runtime::{by_name, Runtime};
use super::session::Session;
use super::window_gate::{OutsideWindow, RebootWindow, WindowStatus, WindowVerdict};
use crate::build::{BuildError, Builder, FlakeUpdate, NixBuilder, PlaceholderBuilder};
use crate::cancel::CancelToken;
use crate::eval::{evaluate, EvalOptions, Evaluation, Source};
use crate::exec::{ActionLog, DryRunAction, DryRunExecutor, Executor, SshOptions, SshTransport};
use crate::graph::Limits;
use crate::notify::NotifyConfig;
use crate::plan::PlanKind;
use crate::reach::{reach, reach_with, ssh_options};
use crate::remote::Escalation;
use crate::settings::FleetSettings;
use crate::store::dir::StateDir;
use crate::store::spec::{RunKind, RunSpec};

/// How a frontend wants a run driven.
#[derive(Debug, Clone, Default)]
pub struct Drive {
    /// Machines per wave; the fleet's `lab.maxParallel` when absent, else 1.
    pub max_parallel: Option<NonZeroUsize>,
    /// Machines of one group per wave; the fleet's setting when absent.
    pub max_unavailable_per_group: Option<NonZeroUsize>,
    /// Run `nix flake update` first (flakes only).
    pub update: bool,
    /// How the fleet is evaluated.
    pub eval: EvalOptions,
    /// The frontend's ssh options; the fleet's `lab.ssh.options` follow them
    /// (ssh takes an option's first value, so the frontend's win).
    pub ssh: SshOptions,
    /// Where locks and journals live.
    pub state: StateDir,
    /// How privileged commands run for non-root target users.
    pub escalation: Escalation,
    /// The command line the journal records.
    pub command: Vec<String>,
    /// Where events go (a dry run sends them too).
    pub events: Events,
    /// Stop request: the steps in flight finish, nothing new starts.
    pub cancel: CancelToken,
    /// Show the run; touch nothing, take no lock, write no journal, leave
    /// flake.lock as it is (with `update`, the update is only listed).
    pub dry_run: bool,
    /// Hooks that override the fleet's `lab.notify` field by field.
    pub notify: NotifyConfig,
    /// What reboots do outside the fleet's `lab.rebootWindow`.
    pub outside_window: OutsideWindow,
    /// Reboot whatever the time.
    pub ignore_window: bool,
}

impl Drive {
    /// The run's hooks: the fleet's, overridden by the frontend's.
    fn notify(&self, settings: &FleetSettings) -> NotifyConfig {
        settings.notify.overridden_by(&self.notify)
    }

    /// The run's reboot window, when the fleet has one and it is not ignored.
    fn window(&self, settings: &FleetSettings) -> Option<RebootWindow> {
        let window = settings.reboot_window.clone().filter(|_| !self.ignore_window)?;
        Some(RebootWindow::new(window, self.outside_window))
    }
}

impl Default for StateDir {
    fn default() -> Self {
        StateDir::default_location()
    }
}

impl Default for Events {
    fn default() -> Self {
        Events::none()
    }
}

/// What a dry run shows: the plans, the systems, and every action in order.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The prepared run.
    pub prepared: Prepared,
    /// What the executors were asked to do, in order.
    pub actions: Vec<DryRunAction>,
    /// The build command that would run on the controller.
    pub build_argv: Option<Vec<String>>,
    /// The `nix flake update` a real run would start with (`--update`);
    /// the plans are for the inputs locked now.
    pub flake_update: Option<FlakeUpdate>,
    /// How the simulated run ended.
    pub report: Report,
    /// The fleet's reboot window as it stands now, for a run with a reboot
    /// phase (absent without a window, or with `--ignore-window`): whether
    /// the real run would reboot, wait or be refused.
    pub window: Option<WindowStatus>,
}

impl DryRun {
    /// The JSON `lab … --dry-run --json` prints.
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "plans": self.prepared.phases,
            "planHash": self.prepared.hash,
            "systems": self.prepared.systems,
            "actions": self.actions,
        });
        if let Some(update) = &self.flake_update {
            value["flakeUpdate"] = json!(update);
        }
        if let Some(window) = &self.window {
            value["window"] = json!(window);
        }
        value
    }

    /// The error the real run would stop with as it begins, if any: a
    /// reboot run outside the window under `--outside-window refuse` (an
    /// orchestrate run deploys first, and skips the reboots instead). A dry
    /// run shows its plan, then ends as the real run would begin.
    pub fn refusal(&self) -> Option<OrchestrateError> {
        let window = self.window.as_ref().filter(|_| self.prepared.spec.kind == RunKind::Reboot)?;
        match (&window.verdict, &window.closed) {
            (WindowVerdict::Refuse, Some(closed)) => Some(OrchestrateError::Window(closed.clone())),
            _ => None,
        }
    }
}

/// How a driven run ended.
#[derive(Debug, Clone)]
pub enum Driven {
    /// Shown, not run.
    DryRun(Box<DryRun>),
    /// Run (or resumed) to its end, or until stopped.
    Finished(Report),
}

/// The builder for a run on `source`: nix, or placeholders for a dry run of
/// the JSON contract.
pub fn builder(source: &Source, dry_run: bool) -> Result<Arc<dyn Builder>, BuildError> {
    Ok(match (source, dry_run) {
        (Source::JsonFile(_), true) => Arc::new(PlaceholderBuilder),
        (_, true) => Arc::new(NixBuilder::new(source)?.dry_run()),
        (_, false) => Arc::new(NixBuilder::new(source)?),
    })
}

/// Starts a new run of `spec` (its limits filled in from `drive` and the
/// fleet's settings), or shows it when `drive.dry_run`.
pub async fn start(mut spec: RunSpec, drive: &Drive) -> Result<Driven, OrchestrateError> {
    let source = spec.source.source();
    let mut options = drive.eval.clone();
    let mut flake_update = None;
    if drive.update {
        let Source::Flake(reference) = &source else {
            return Err(BuildError::NotBuildable(
                "--update needs a flake; other sources have no lock file to update".into(),
            )
            .into());
        };
        let update = FlakeUpdate::new(reference)?;
        if drive.dry_run {
            // `nix flake update` rewrites flake.lock, and a dry run writes
            // nothing: it is listed, and the plan is for the current lock.
            drive.events.send(Event::Notice {
                message: "a real run would first update the flake's inputs (nix flake update); this plan is for the inputs locked now".into(),
            });
            flake_update = Some(update);
        } else {
            drive.events.send(Event::Notice { message: "updating the flake's inputs (nix flake update)".into() });
            update.run().await?;
            options.refresh = true;
        }
    }
    let evaluation = evaluate_off_runtime(&source, &options).await?;
    let settings = &evaluation.settings;
    spec.limits = Limits::resolve(drive.max_parallel, drive.max_unavailable_per_group, settings);
    let builder = needs_build(&spec).then(|| builder(&source, drive.dry_run)).transpose()?;
    let prepared = prepare(&spec, &evaluation, builder.as_deref()).await?;
    if drive.dry_run {
        // Where the real run would consult the window: reboots only.
        let window =
            drive.window(settings).filter(|_| spec.kind.phases().contains(&PlanKind::Reboot)).map(|w| w.status());
        return dry_run(prepared, builder, drive, flake_update, window).await;
    }
    // A reboot run outside the window that would only be refused is refused
    // before it takes the lock (an orchestrate run deploys first).
    if let Some(window) = drive.window(settings) {
        if spec.kind == RunKind::Reboot && window.outside == OutsideWindow::Refuse {
            window.check()?;
        }
    }
    let session = Session::start(&drive.state, &prepared, drive.command.clone())?;
    run(&prepared, builder, drive, &evaluation, session, false).await
}

/// Continues the interrupted run `run_id` (the latest one when `None`).
pub async fn resume(run_id: Option<&str>, drive: &Drive) -> Result<Driven, OrchestrateError> {
    let interrupted = super::resume::find(&drive.state, run_id)?;
    let source = interrupted.spec.source.source();
    let evaluation = evaluate_off_runtime(&source, &drive.eval).await?;
    let builder = needs_build(&interrupted.spec).then(|| builder(&source, false)).transpose()?;
    let prepared = prepare(&interrupted.spec, &evaluation, builder.as_deref()).await?;
    let session = Session::resume(&drive.state, &interrupted, &prepared)?;
    run(&prepared, builder, drive, &evaluation, session, true).await
}

/// Evaluates the fleet on tokio's blocking threads: an evaluation can take
/// minutes of waiting on nix, which must not hold a runtime worker (events,
/// Ctrl-C and the FFI's other calls go on meanwhile).
async fn evaluate_off_runtime(source: &Source, options: &EvalOptions) -> Result<Evaluation, OrchestrateError> {
    let (source, options) = (source.clone(), options.clone());
    match tokio::task::spawn_blocking(move || evaluate(&source, &options)).await {
        Ok(evaluation) => Ok(evaluation?),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(OrchestrateError::Setup(format!("the evaluation did not finish: {e}"))),
    }
}

fn needs_build(spec: &RunSpec) -> bool {
    spec.kind.phases().contains(&PlanKind::Deploy)
}

/// Executes `prepared` with recording executors; nothing is touched.
async fn dry_run(
    prepared: Prepared,
    builder: Option<Arc<dyn Builder>>,
    drive: &Drive,
    flake_update: Option<FlakeUpdate>,
    window: Option<WindowStatus>,
) -> Result<Driven, OrchestrateError> {
    let log = ActionLog::new();
    let reached = reach_with(prepared.fleet.machines(), |m| {
        Ok::<_, Infallible>(Arc::new(DryRunExecutor::new(&m.name, log.clone())) as Arc<dyn Executor>)
    });
    let (executors, probers) = by_name(reached.unwrap_or_else(|never| match never {}));
    let rt = Runtime {
        executors,
        probers,
        builder: builder.clone(),
        escalation: drive.escalation.clone(),
        events: drive.events.clone(),
        cancel: drive.cancel.clone(),
        dry_run: true,
        notify: NotifyConfig::default(),
        window: None,
    };
    let report = execute(&prepared, &rt, "dry-run", None, Default::default()).await?;
    let systems: Vec<_> = prepared.systems.values().cloned().collect();
    let build_argv = match &builder {
        Some(_) if !systems.is_empty() => {
            NixBuilder::new(&prepared.spec.source.source()).ok().map(|b| b.build_argv(&systems))
        }
        _ => None,
    };
    Ok(Driven::DryRun(Box::new(DryRun { prepared, actions: log.actions(), build_argv, flake_update, report, window })))
}

/// Executes a session over ssh: one multiplexed connection per machine,
/// closed at the end.
async fn run(
    prepared: &Prepared,
    builder: Option<Arc<dyn Builder>>,
    drive: &Drive,
    evaluation: &Evaluation,
    session: Session,
    resumed: bool,
) -> Result<Driven, OrchestrateError> {
    let transport = SshTransport::new(ssh_options(drive.ssh.clone(), &evaluation.settings)).map_err(|e| {
        OrchestrateError::Setup(format!("cannot create the private directory for ssh control sockets: {e}"))
    })?;
    let reached = reach(&transport, prepared.fleet.machines()).map_err(|e| OrchestrateError::Setup(e.to_string()))?;
    let (executors, probers) = by_name(reached);
    let rt = Runtime {
        executors,
        probers,
        builder,
        escalation: drive.escalation.clone(),
        events: drive.events.clone(),
        cancel: drive.cancel.clone(),
        dry_run: false,
        notify: drive.notify(&evaluation.settings),
        window: drive.window(&evaluation.settings),
    };
    let events = &drive.events;
    if let Some(old) = &session.lock.taken_over_from {
        events.send(Event::Notice { message: format!("took over the lock left by {old}, which is no longer running") });
    }
    events.send(Event::RunStarted {
        run_id: session.run_id.clone(),
        command: prepared.spec.kind.name().into(),
        plan_hash: prepared.hash.clone(),
        machines: prepared.fleet.len(),
        steps: prepared.step_count(),
        resumed,
        journal: session.journal_path().display().to_string(),
    });
    let Session { run_id, journal, prior, lock } = session;
    let result = execute(prepared, &rt, &run_id, Some(journal), prior).await;
    drop(lock);
    drop(rt);
    transport.close().await;
    Ok(Driven::Finished(result?))
}

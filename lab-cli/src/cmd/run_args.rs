//! What `deploy`, `reboot`, `orchestrate` and `resume` share: options, and
//! driving a run (executors, lock, journal, Ctrl-C, progress, exit code).
//!
//! Exit codes of runs: 0 every machine done; 1 something failed or was
//! rolled back; 2 usage or runtime error; 3 another run holds the fleet's
//! lock; 4 interrupted (Ctrl-C), continue with `lab resume RUN_ID`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use lab_core::eval::{EvalOptions, Source};
use lab_core::exec::{ActionLog, DryRunExecutor, Executor};
use lab_core::health::{HttpClients, MachineProber};
use lab_core::orchestrate::lock::LockError;
use lab_core::orchestrate::{
    execute, prepare, Builder, CancelToken, Escalation, Events, NixBuilder, OrchestrateError, Outcome,
    PlaceholderBuilder, Prepared, ProberDebug, Report, RunSpec, Runtime, Secret, Session, StateDir,
};
use lab_core::plan::PlanKind;
use lab_core::settings::FleetSettings;

use super::order_args::{LimitArgs, SelectArgs};
use crate::progress::Progress;
use crate::ssh::SshArgs;

/// Exit code: a step failed or a machine was rolled back.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: another run holds the fleet's lock.
pub const EXIT_LOCKED: u8 = 3;
/// Exit code: stopped on request; resumable.
pub const EXIT_INTERRUPTED: u8 = 4;

/// Where state lives, how machines are reached, how output looks.
#[derive(Debug, Clone, Args)]
pub struct RunEnv {
    /// Print the events as JSON lines instead of progress.
    #[arg(long)]
    pub json: bool,
    /// Where locks and journals live [default: $XDG_STATE_HOME/lab or ~/.local/state/lab].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Ask once for the sudo password of non-root target users (fed to `sudo -S`).
    #[arg(long)]
    pub ask_sudo_password: bool,
    /// How privileged commands run when targetUser is not root (split on spaces).
    #[arg(long, value_name = "CMD", default_value = "sudo -H --")]
    pub escalate: String,
    #[command(flatten)]
    pub ssh: SshArgs,
}

/// Options every new run takes.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// A failed machine does not stop unrelated ones; its dependents are skipped.
    #[arg(long)]
    pub keep_going: bool,
    /// Stop once N machines failed (implies going on until then).
    #[arg(long, value_name = "N")]
    pub max_failures: Option<usize>,
    /// Print the exact plan and commands; touch nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub env: RunEnv,
}

impl RunArgs {
    /// Applies the shared options to `spec`.
    pub fn apply(&self, spec: &mut RunSpec) {
        spec.on = self.select.on.clone();
        spec.with_dependencies = self.select.with_dependencies;
        spec.with_dependents = self.select.with_dependents;
        // The fleet's settings fill in what the flags leave out once it is
        // evaluated (see run_new).
        spec.limits = self.limits.limits(&FleetSettings::default());
        spec.keep_going = self.keep_going;
        spec.max_failures = self.max_failures;
    }
}

impl RunEnv {
    fn state(&self) -> StateDir {
        self.state_dir.clone().map_or_else(StateDir::default_location, StateDir::new)
    }

    fn escalation(&self) -> Result<Escalation> {
        let password = if self.ask_sudo_password {
            eprint!("sudo password for the target users: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("cannot read the sudo password")?;
            Some(Secret::new(line.trim_end_matches(['\n', '\r'])))
        } else {
            None
        };
        Ok(Escalation { command: self.escalate.split_whitespace().map(String::from).collect(), password })
    }
}

/// The builder for a run on `source`: nix, or placeholders for a dry run of
/// the JSON contract.
fn builder(source: &Source, dry_run: bool) -> Result<Arc<dyn Builder>> {
    Ok(match (source, dry_run) {
        (Source::JsonFile(_), true) => Arc::new(PlaceholderBuilder),
        (_, true) => Arc::new(NixBuilder::new(source)?.dry_run()),
        (_, false) => Arc::new(NixBuilder::new(source)?),
    })
}

/// Prepares and runs `spec` (new run), or shows it with `--dry-run`.
pub fn run_new(
    mut spec: RunSpec,
    args: &RunArgs,
    command: Vec<String>,
    update: bool,
    mut eval_options: EvalOptions,
) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let source = spec.source.source();
        if update {
            if let Source::Flake(reference) = &source {
                eprintln!("updating the flake's inputs (nix flake update)…");
                lab_core::orchestrate::update_flake(reference).await?;
                eval_options.refresh = true;
            } else {
                anyhow::bail!("--update needs a flake (--flake); other sources have no lock file to update");
            }
        }
        let evaluation = lab_core::eval::evaluate(&source, &eval_options)?;
        spec.limits = args.limits.limits(&evaluation.settings);
        let needs_build = spec.kind.phases().contains(&PlanKind::Deploy);
        let builder = if needs_build { Some(builder(&source, args.dry_run)?) } else { None };
        let prepared = prepare(&spec, &evaluation, builder.as_deref()).await?;
        if args.dry_run {
            return dry_run(&prepared, builder, &args.env).await;
        }
        let state = args.env.state();
        let session = match Session::start(&state, &prepared, command) {
            Ok(session) => session,
            // Exit 3 only when another run holds the lock; a state
            // directory that cannot hold one is a runtime error (exit 2).
            Err(OrchestrateError::Lock(e @ LockError::Held { .. })) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_LOCKED));
            }
            Err(e) => return Err(e.into()),
        };
        drive(&prepared, builder, &args.env, &evaluation.settings, session, false).await
    })
}

/// `lab resume`: continues an interrupted run.
pub fn run_resume(run_id: Option<&str>, env: &RunEnv) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let state = env.state();
        let run = lab_core::orchestrate::resume::find(&state, run_id)?;
        let source = run.spec.source.source();
        let options = EvalOptions { cache_dir: lab_core::eval::default_cache_dir(), ..EvalOptions::default() };
        let evaluation = lab_core::eval::evaluate(&source, &options)?;
        let needs_build = run.spec.kind.phases().contains(&PlanKind::Deploy);
        let builder = if needs_build { Some(builder(&source, false)?) } else { None };
        let prepared = prepare(&run.spec, &evaluation, builder.as_deref()).await?;
        let session = match Session::resume(&state, &run, &prepared) {
            Ok(session) => session,
            // Exit 3 only when another run holds the lock; a state
            // directory that cannot hold one is a runtime error (exit 2).
            Err(OrchestrateError::Lock(e @ LockError::Held { .. })) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_LOCKED));
            }
            Err(e) => return Err(e.into()),
        };
        drive(&prepared, builder, env, &evaluation.settings, session, true).await
    })
}

async fn dry_run(prepared: &Prepared, builder: Option<Arc<dyn Builder>>, env: &RunEnv) -> Result<ExitCode> {
    let log = ActionLog::new();
    let mut executors: BTreeMap<String, Arc<dyn Executor>> = BTreeMap::new();
    let mut probers: BTreeMap<String, Arc<dyn ProberDebug>> = BTreeMap::new();
    let clients = HttpClients::default();
    for m in prepared.fleet.machines() {
        let exec: Arc<dyn Executor> = Arc::new(DryRunExecutor::new(&m.name, log.clone()));
        probers.insert(m.name.clone(), Arc::new(MachineProber::new(m, exec.clone(), clients.clone())));
        executors.insert(m.name.clone(), exec);
    }
    let rt = Runtime {
        executors,
        probers,
        builder: builder.clone(),
        escalation: env.escalation()?,
        events: Events::none(),
        cancel: CancelToken::new(),
        dry_run: true,
    };
    execute(prepared, &rt, "dry-run", None, Default::default()).await?;
    let mut out = String::new();
    for plan in &prepared.phases {
        out.push_str(&plan.render_text());
        out.push('\n');
    }
    out.push_str("Commands (nothing was run):\n");
    for (name, system) in &prepared.systems {
        out.push_str(&format!("  [controller] system of {name}: {}\n", system.out_path));
    }
    if let Some(builder) = &builder {
        let systems: Vec<_> = prepared.systems.values().cloned().collect();
        if !systems.is_empty() {
            let argv = NixBuilder::new(&prepared.spec.source.source()).map(|b| b.build_argv(&systems));
            if let Ok(argv) = argv {
                out.push_str(&format!("  [controller] $ {}\n", lab_core::exec::quote_argv(&argv)));
            }
        }
        let _ = builder;
    }
    for action in log.actions() {
        out.push_str(&format!("  {}\n", crate::progress::action_line(&action)));
    }
    if env.json {
        crate::render::print_json(&serde_json::json!({
            "plans": prepared.phases,
            "planHash": prepared.hash,
            "systems": prepared.systems,
            "actions": log.actions(),
        }))?;
    } else {
        print!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Executes a session: ssh executors, Ctrl-C, progress, exit code.
async fn drive(
    prepared: &Prepared,
    builder: Option<Arc<dyn Builder>>,
    env: &RunEnv,
    settings: &FleetSettings,
    session: Session,
    resumed: bool,
) -> Result<ExitCode> {
    let transport = env.ssh.transport(settings)?;
    let clients = HttpClients::default();
    let mut executors: BTreeMap<String, Arc<dyn Executor>> = BTreeMap::new();
    let mut probers: BTreeMap<String, Arc<dyn ProberDebug>> = BTreeMap::new();
    for m in prepared.fleet.machines() {
        let exec: Arc<dyn Executor> = Arc::new(transport.executor(m)?);
        probers.insert(m.name.clone(), Arc::new(MachineProber::new(m, exec.clone(), clients.clone())));
        executors.insert(m.name.clone(), exec);
    }
    let (events, rx) = Events::channel();
    let cancel = CancelToken::new();
    let rt = Runtime {
        executors,
        probers,
        builder,
        escalation: env.escalation()?,
        events: events.clone(),
        cancel: cancel.clone(),
        dry_run: false,
    };
    let run_id = session.run_id.clone();
    if let Some(old) = &session.lock.taken_over_from {
        events.send(lab_core::orchestrate::Event::Notice {
            message: format!("took over the lock left by {old}, which is no longer running"),
        });
    }
    events.send(lab_core::orchestrate::Event::RunStarted {
        run_id: run_id.clone(),
        command: prepared.spec.kind.name().into(),
        plan_hash: prepared.hash.clone(),
        machines: prepared.fleet.len(),
        steps: prepared.step_count(),
        resumed,
        journal: session.journal_path().display().to_string(),
    });
    let interrupt = {
        let (cancel, run_id) = (cancel.clone(), run_id.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\nstopping: the steps in flight finish, nothing new starts; continue later with `lab resume {run_id}`"
                );
                cancel.cancel();
            }
        })
    };
    let progress = Progress::new(env.json, prepared.step_count());
    let render = tokio::spawn(progress.consume(rx));
    let Session { journal, prior, lock, .. } = session;
    let result = execute(prepared, &rt, &run_id, Some(journal), prior).await;
    drop(lock);
    interrupt.abort();
    drop(rt);
    drop(events);
    let _ = render.await;
    transport.close().await;
    let report: Report = result?;
    Ok(match report.outcome {
        Outcome::Success => ExitCode::SUCCESS,
        Outcome::Failed => ExitCode::from(EXIT_FAILED),
        Outcome::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
    })
}

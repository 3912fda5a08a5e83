//! What `deploy`, `reboot`, `orchestrate` and `resume` share: options, and
//! following a run lab-core drives (`orchestrate::drive`): Ctrl-C, progress,
//! the dry-run listing, the exit code.
//!
//! Exit codes of runs are those of every command (see `crate::exit`): 0
//! every machine done; 1 something failed or was rolled back, or the run
//! was refused because the fleet is not clean; 2 usage or runtime error; 3
//! another run holds the fleet's lock; 4 interrupted (Ctrl-C), continue
//! with `lab resume RUN_ID`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use lab_core::eval::EvalOptions;
use lab_core::orchestrate::drive::{self, Drive, Driven, DryRun};
use lab_core::orchestrate::{Escalation, Events, Outcome, RunSpec, Secret, StateDir};
use lab_core::settings::FleetSettings;

use super::hooks_args::{NotifyArgs, WindowArgs};
use super::order_args::{LimitArgs, SelectArgs};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::ssh::SshArgs;

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
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub window: WindowArgs,
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
        // The limits: lab-core resolves them from the flags (see run_new)
        // and the fleet's settings, once the fleet is evaluated.
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

    /// How lab-core drives a run these options ask for.
    fn drive(&self, command: Vec<String>, eval: EvalOptions) -> Result<Drive> {
        Ok(Drive {
            eval,
            ssh: self.ssh.options(&FleetSettings::default()),
            state: self.state(),
            escalation: self.escalation()?,
            command,
            notify: self.notify.config(&FleetSettings::default())?,
            outside_window: self.window.outside(),
            ignore_window: self.window.ignore_window,
            ..Drive::default()
        })
    }
}

/// What to drive.
enum Target {
    New(RunSpec),
    Resume(Option<String>),
}

/// Prepares and runs `spec` (new run), or shows it with `--dry-run`.
pub fn run_new(
    spec: RunSpec,
    args: &RunArgs,
    command: Vec<String>,
    update: bool,
    eval_options: EvalOptions,
) -> Result<Exit> {
    let drive = Drive {
        max_parallel: args.limits.max_parallel,
        max_unavailable_per_group: args.limits.max_unavailable_per_group,
        update,
        dry_run: args.dry_run,
        ..args.env.drive(command, eval_options)?
    };
    if args.dry_run {
        let runtime = tokio::runtime::Runtime::new()?;
        return match runtime.block_on(drive::start(spec, &drive))? {
            Driven::DryRun(shown) => show_dry_run(&shown, args.env.json),
            Driven::Finished(_) => Ok(Exit::Success),
        };
    }
    follow(&args.env, drive, Target::New(spec))
}

/// `lab resume`: continues an interrupted run.
pub fn run_resume(run_id: Option<&str>, env: &RunEnv) -> Result<Exit> {
    let options = EvalOptions { cache_dir: lab_core::eval::default_cache_dir(), ..EvalOptions::default() };
    let drive = env.drive(vec!["resume".into()], options)?;
    follow(env, drive, Target::Resume(run_id.map(String::from)))
}

/// Prints what a dry run would do: the plans and every command; then ends
/// as the real run would begin (a reboot refused outside the window: its
/// exit code, from the one table in `crate::exit`).
fn show_dry_run(shown: &DryRun, json: bool) -> Result<Exit> {
    if json {
        crate::render::print_json(&shown.to_json())?;
    } else {
        crate::out::print(dry_run_text(shown))?;
    }
    Ok(match shown.refusal() {
        Some(refused) => {
            let error = anyhow::Error::from(refused);
            eprintln!("error: the real run would stop here: {error:#}");
            Exit::of_error(&error).unwrap_or(Exit::Error)
        }
        None => Exit::Success,
    })
}

/// The dry run as text.
fn dry_run_text(shown: &DryRun) -> String {
    let mut out = String::new();
    if let Some(window) = &shown.window {
        out.push_str(&format!("Reboot window: {}.\n\n", window.describe()));
    }
    if shown.flake_update.is_some() {
        out.push_str(
            "A real run first updates the flake's inputs (nix flake update, listed below; not run now, flake.lock is untouched); this plan is for the inputs locked now.\n\n",
        );
    }
    for plan in &shown.prepared.phases {
        out.push_str(&plan.render_text());
        out.push('\n');
    }
    out.push_str("Commands (nothing was run):\n");
    if let Some(update) = &shown.flake_update {
        // Listed first, as the real run starts with it; the plan above is
        // for the inputs locked now.
        out.push_str(&format!(
            "  [controller] (in {}) $ {}\n",
            update.dir.display(),
            lab_core::exec::quote_argv(&update.argv)
        ));
    }
    for (name, system) in &shown.prepared.systems {
        out.push_str(&format!("  [controller] system of {name}: {}\n", system.out_path));
    }
    if let Some(argv) = &shown.build_argv {
        out.push_str(&format!("  [controller] $ {}\n", lab_core::exec::quote_argv(argv)));
    }
    for action in &shown.actions {
        out.push_str(&format!("  {}\n", crate::progress::action_line(action)));
    }
    out
}

/// Drives a run while rendering its events; Ctrl-C stops it; the exit code
/// says how it ended.
fn follow(env: &RunEnv, mut drive: Drive, target: Target) -> Result<Exit> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (events, rx) = Events::channel();
        drive.events = events;
        let interrupt = {
            let cancel = drive.cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "\nstopping: the steps in flight finish, nothing new starts; continue later with `lab resume`"
                    );
                    cancel.cancel();
                }
            })
        };
        let render = tokio::spawn(Progress::new(env.json, 0).consume(rx));
        let result = match target {
            Target::New(spec) => drive::start(spec, &drive).await,
            Target::Resume(run_id) => drive::resume(run_id.as_deref(), &drive).await,
        };
        interrupt.abort();
        drop(drive);
        let _ = render.await;
        match result {
            Ok(Driven::Finished(report)) => Ok(match report.outcome {
                Outcome::Success => Exit::Success,
                Outcome::Failed => Exit::NotClean,
                Outcome::Interrupted => Exit::Interrupted,
            }),
            Ok(Driven::DryRun(_)) => Ok(Exit::Success),
            // A held lock (exit 3) and a fleet that is not clean (exit 1)
            // are told apart from runtime errors by `Exit::of_error`.
            Err(e) => Err(e.into()),
        }
    })
}

//! Long runs over the C ABI: deploy, reboot and orchestrate, with events
//! delivered to a callback and a cancel handle another thread can fire.
//! lab-core drives the run (`orchestrate::drive`); this file only reads the
//! request, forwards events and maps the outcome to a status.

use std::ffi::{c_char, c_void, CString};

use serde_json::Value;

use serde::Deserialize;

use crate::boundary::{call, FfiError, LabStatus};
use crate::request::{self, Argv, Count, Flag, Request, Select, Ssh, Text};
use lab_core::orchestrate::drive::{self, Drive, Driven};
use lab_core::orchestrate::{
    CancelToken, Escalation, Events, OrchestrateError, Outcome, RunKind, RunSpec, Secret, StateDir,
};
use lab_core::plan::Goal;

/// A cancel handle for a long run. Create it with [`lab_cancel_new`], pass
/// it to a run, fire it with [`lab_cancel`] (from any thread), free it with
/// [`lab_cancel_free`] once the run returned.
#[derive(Debug, Default)]
pub struct LabCancel(CancelToken);

/// Called with each event of a run as JSON (the lines `lab … --json`
/// prints), on the thread that called the run, before the run returns.
/// `event_json` belongs to lab and is valid only during the call; copy what
/// you keep. The callback must return normally: no longjmp, no exception
/// through lab's frames.
pub type LabEventCallback = Option<unsafe extern "C" fn(event_json: *const c_char, user_data: *mut c_void)>;

/// A new cancel handle, not fired. Free it with [`lab_cancel_free`].
#[no_mangle]
pub extern "C" fn lab_cancel_new() -> *mut LabCancel {
    Box::into_raw(Box::default())
}

/// Asks the runs holding `cancel` to stop: the steps in flight finish,
/// nothing new starts, and the run returns `LAB_ERR_CANCELLED` (resumable
/// with `lab resume`). Safe from any thread, any number of times; NULL is
/// ignored.
///
/// # Safety
/// `cancel` must be NULL or a live handle from [`lab_cancel_new`].
#[no_mangle]
pub unsafe extern "C" fn lab_cancel(cancel: *const LabCancel) {
    // SAFETY: per the contract, a live handle or NULL.
    if let Some(handle) = unsafe { cancel.as_ref() } {
        handle.0.cancel();
    }
}

/// Frees a cancel handle. NULL is ignored.
///
/// # Safety
/// `cancel` must be NULL or a handle from [`lab_cancel_new`], freed once,
/// and no longer used by a running call.
#[no_mangle]
pub unsafe extern "C" fn lab_cancel_free(cancel: *mut LabCancel) {
    if !cancel.is_null() {
        // SAFETY: it came from Box::into_raw in lab_cancel_new.
        drop(unsafe { Box::from_raw(cancel) });
    }
}

/// Reads a fleet, cancellably: the whole evaluation as lab reads it,
/// `{"machines": {NAME: …}, "unmanaged": [NAME], "failures": [{"machine",
/// "message", "location"}], "settings": {…}}`.
///
/// `request`: the fleet source and evaluation fields of
/// [`lab_machines`](crate::lab_machines). `cancel` (NULL: not cancellable),
/// fired from another thread, kills nix and the call returns
/// `LAB_ERR_CANCELLED` with an error object.
///
/// # Safety
/// `request_json` NULL or NUL-terminated; `cancel` NULL or live; `out` as in
/// [`lab_schema`](crate::lab_schema).
#[no_mangle]
pub unsafe extern "C" fn lab_evaluate(
    request_json: *const c_char,
    cancel: *const LabCancel,
    out: *mut *mut c_char,
) -> LabStatus {
    call(out, || {
        let req = Request::<()>::parse(request_json)?;
        let mut options = req.eval.options();
        // SAFETY: per the contract above, NULL or a live handle.
        if let Some(handle) = unsafe { cancel.as_ref() } {
            options.cancel = Some(handle.0.clone());
        }
        Ok(serde_json::to_value(req.evaluate_with(&options)?).unwrap_or(Value::Null))
    })
}

/// Deploys the selected machines, as `lab deploy`.
///
/// `request`: the fleet source plus optional `on`, `withDependencies`,
/// `withDependents`, `maxParallel`, `maxUnavailablePerGroup`, `keepGoing`,
/// `maxFailures`, `dryRun`, `stateDir`, `sshOptions` (list of "Key=Value"),
/// `sshConfig`, `escalate` (list, default ["sudo","-H","--"]),
/// `sudoPassword`, and `goal` ("switch" | "boot" | "test" |
/// "dry-activate"), `buildOnTarget`.
///
/// Each event goes to `on_event(event_json, user_data)` (NULL: none).
/// `cancel` (NULL: not cancellable) stops the run from another thread.
///
/// `*out` gets the result, freed with `lab_string_free`: for a dry run the
/// JSON of `lab deploy --dry-run --json` (plans, planHash, systems,
/// actions); else the report `{"runId", "outcome", "machines": {NAME:
/// [outcome, reason]}}`. Status: `LAB_OK`; `LAB_ERR_NOT_CLEAN` when a
/// machine failed or was rolled back; `LAB_ERR_CANCELLED` when stopped;
/// `LAB_ERR_LOCKED` when another run holds the fleet; else an error object.
/// A dry run the real run would refuse as it begins (a reboot outside the
/// fleet's rebootWindow) ends with that refusal's status and error object,
/// as the CLI's exit code does, its JSON under `dryRun`.
///
/// # Safety
/// `request_json` NULL or NUL-terminated; `cancel` NULL or live; `out` as in
/// [`lab_schema`](crate::lab_schema).
#[no_mangle]
pub unsafe extern "C" fn lab_deploy(
    request_json: *const c_char,
    on_event: LabEventCallback,
    user_data: *mut c_void,
    cancel: *const LabCancel,
    out: *mut *mut c_char,
) -> LabStatus {
    call(out, || long_run(RunKind::Deploy, request_json, on_event, user_data, cancel))
}

/// Reboots the selected machines in sequence, as `lab reboot`.
///
/// `request`: as [`lab_deploy`] but, instead of `goal` and
/// `buildOnTarget`, `noDelay` and `onlyIfNeeded`. Events, cancel, result
/// and status as [`lab_deploy`].
///
/// # Safety
/// As [`lab_deploy`].
#[no_mangle]
pub unsafe extern "C" fn lab_reboot(
    request_json: *const c_char,
    on_event: LabEventCallback,
    user_data: *mut c_void,
    cancel: *const LabCancel,
    out: *mut *mut c_char,
) -> LabStatus {
    call(out, || long_run(RunKind::Reboot, request_json, on_event, user_data, cancel))
}

/// Deploys every machine, then reboots those that need it, as
/// `lab orchestrate`.
///
/// `request`: as [`lab_deploy`] with `goal` "boot" (default) or "switch",
/// plus `noDelay` and `update` (run `nix flake update` first; flakes only).
/// Events, cancel, result and status as [`lab_deploy`].
///
/// # Safety
/// As [`lab_deploy`].
#[no_mangle]
pub unsafe extern "C" fn lab_orchestrate(
    request_json: *const c_char,
    on_event: LabEventCallback,
    user_data: *mut c_void,
    cancel: *const LabCancel,
    out: *mut *mut c_char,
) -> LabStatus {
    call(out, || long_run(RunKind::Orchestrate, request_json, on_event, user_data, cancel))
}

/// The fields every long run takes beside its selection, limits and ssh.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunFields {
    #[serde(default)]
    keep_going: Flag,
    #[serde(default)]
    max_failures: Count,
    #[serde(default)]
    dry_run: Flag,
    #[serde(default)]
    state_dir: Text,
    #[serde(default)]
    escalate: Argv,
    #[serde(default)]
    sudo_password: Text,
}

/// `lab_deploy`'s own fields.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeployFields {
    #[serde(default)]
    goal: Option<Value>,
    #[serde(default)]
    build_on_target: Flag,
}

/// `lab_reboot`'s own fields.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RebootFields {
    #[serde(default)]
    no_delay: Flag,
    #[serde(default)]
    only_if_needed: Flag,
}

/// `lab_orchestrate`'s own fields.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrchestrateFields {
    #[serde(default)]
    goal: Option<Value>,
    #[serde(default)]
    no_delay: Flag,
    #[serde(default)]
    update: Flag,
}

/// What a run kind's own fields set: the goal, build on target, no delay,
/// only if needed, update. Fields a kind does not take stay at their
/// defaults (and are unknown fields in its request).
#[derive(Debug, Default)]
struct KindOptions {
    goal: Option<Value>,
    build_on_target: bool,
    no_delay: bool,
    only_if_needed: bool,
    update: bool,
}

impl From<DeployFields> for KindOptions {
    fn from(f: DeployFields) -> Self {
        KindOptions { goal: f.goal, build_on_target: f.build_on_target.0, ..KindOptions::default() }
    }
}

impl From<RebootFields> for KindOptions {
    fn from(f: RebootFields) -> Self {
        KindOptions { no_delay: f.no_delay.0, only_if_needed: f.only_if_needed.0, ..KindOptions::default() }
    }
}

impl From<OrchestrateFields> for KindOptions {
    fn from(f: OrchestrateFields) -> Self {
        KindOptions { goal: f.goal, no_delay: f.no_delay.0, update: f.update.0, ..KindOptions::default() }
    }
}

/// A long run's request, read with the fields of `kind`.
type RunRequest<K> = Request<(Select, request::Limits, RunFields, Ssh, K)>;

fn parse_run<K: serde::de::DeserializeOwned + Into<KindOptions>>(
    request_json: *const c_char,
) -> Result<(RunRequest<()>, KindOptions), FfiError> {
    let Request { source, eval, call: (select, limits, run, ssh, own) } = RunRequest::<K>::parse(request_json)?;
    Ok((Request { source, eval, call: (select, limits, run, ssh, ()) }, own.into()))
}

fn long_run(
    kind: RunKind,
    request_json: *const c_char,
    on_event: LabEventCallback,
    user_data: *mut c_void,
    cancel: *const LabCancel,
) -> Result<Value, FfiError> {
    let (req, own) = match kind {
        RunKind::Deploy => parse_run::<DeployFields>(request_json)?,
        RunKind::Reboot => parse_run::<RebootFields>(request_json)?,
        RunKind::Orchestrate => parse_run::<OrchestrateFields>(request_json)?,
    };
    let (spec, mut drive) = run(&req, &own, kind)?;
    // SAFETY: per the contract of the entry points, NULL or a live handle.
    if let Some(handle) = unsafe { cancel.as_ref() } {
        drive.cancel = handle.0.clone();
        // Cancelling also stops the fleet's evaluation the run begins with.
        drive.eval.cancel = Some(handle.0.clone());
    }
    let (events, mut rx) = Events::channel();
    drive.events = events;
    let runtime = crate::runtime()?;
    // block_on runs this future on the calling thread, so the callback is
    // called there too (Guile needs that) while the run's I/O uses the
    // runtime's workers.
    let result = runtime.block_on(async move {
        let run = async move {
            let result = drive::start(spec, &drive).await;
            drop(drive);
            result
        };
        let forward = async {
            while let Some(event) = rx.recv().await {
                let (Some(callback), Ok(text)) = (on_event, serde_json::to_string(&event)) else { continue };
                let text = CString::new(text).unwrap_or_default();
                // SAFETY: the caller's callback, given a string valid for the call.
                unsafe { callback(text.as_ptr(), user_data) };
            }
        };
        tokio::join!(run, forward).0
    });
    let (outcome, value) = match result.map_err(run_error)? {
        // A dry run the real run would refuse as it begins (a reboot outside
        // the window) ends with that refusal's status, as the CLI's exit
        // code does; the plan it showed is in the error object.
        Driven::DryRun(shown) => match shown.refusal() {
            Some(refused) => {
                let mut error = run_error(refused);
                error.object["dryRun"] = shown.to_json();
                return Err(error);
            }
            None => (shown.report.outcome, shown.to_json()),
        },
        Driven::Finished(report) => (report.outcome, serde_json::to_value(&report).unwrap_or_default()),
    };
    match outcome {
        Outcome::Success => Ok(value),
        Outcome::Failed => Err(FfiError { status: LabStatus::LabErrNotClean, object: value }),
        Outcome::Interrupted => Err(FfiError { status: LabStatus::LabErrCancelled, object: value }),
    }
}

/// An error that stopped a run from starting or going on.
fn run_error(e: OrchestrateError) -> FfiError {
    use lab_core::orchestrate::BuildError;
    let (status, kind) = match &e {
        OrchestrateError::Lock(lab_core::store::lock::LockError::Held { .. }) => (LabStatus::LabErrLocked, "locked"),
        // A fleet that manages nothing is not clean, as for the reads.
        OrchestrateError::Eval(inner) if inner.fleet_not_clean() => (LabStatus::LabErrNotClean, "fleet"),
        OrchestrateError::Eval(_) | OrchestrateError::EvalFailures(_) => (LabStatus::LabErrEvaluation, "evaluation"),
        OrchestrateError::Build(BuildError::NotBuildable(_))
        | OrchestrateError::Select(_)
        | OrchestrateError::Spec(_) => (LabStatus::LabErrInvalidArgument, "invalid-argument"),
        OrchestrateError::Build(_) => (LabStatus::LabErrEvaluation, "build"),
        OrchestrateError::Fleet(_) | OrchestrateError::Problems(_) | OrchestrateError::Order(_) => {
            (LabStatus::LabErrNotClean, "fleet")
        }
        _ => (LabStatus::LabErrRun, "run"),
    };
    // The message's advice in the C API's words (lab_check, evalTimeout).
    let mut error = FfiError::core(status, kind, &e);
    if let OrchestrateError::Problems(problems) = &e {
        error.object["problems"] = serde_json::to_value(problems).unwrap_or_default();
    }
    if let OrchestrateError::Order(lab_core::graph::OrderError::Blocked(blocked)) = &e {
        let problems: Vec<_> = blocked.blocking.iter().flat_map(|b| b.broken.problems.iter()).collect();
        error.object["problems"] = serde_json::to_value(problems).unwrap_or_default();
        error.object["blocking"] = serde_json::to_value(&blocked.blocking).unwrap_or_default();
    }
    error
}

/// The run a request asks for, and how to drive it.
fn run(req: &RunRequest<()>, own: &KindOptions, kind: RunKind) -> Result<(RunSpec, Drive), FfiError> {
    let (select, limits, fields, ssh, ()) = &req.call;
    let cwd = std::env::current_dir().unwrap_or_default();
    let source = req.source.resolve(&cwd).map_err(|e| FfiError::invalid(e.to_string()))?;
    let mut spec = RunSpec::new(kind, &source);
    spec.on = select.on.0.clone();
    spec.with_dependencies = select.with_dependencies.0;
    spec.with_dependents = select.with_dependents.0;
    spec.keep_going = fields.keep_going.0;
    spec.max_failures = fields.max_failures.0.map(usize::from);
    spec.options.build_on_target = own.build_on_target;
    spec.options.no_delay = own.no_delay;
    spec.options.only_if_needed = spec.options.only_if_needed || own.only_if_needed;
    if let Some(goal) = own.goal.as_ref().filter(|v| !v.is_null()) {
        // Which goals a kind takes is lab-core's decision (RunSpec::validate).
        let allowed: Vec<&str> = kind.goals().iter().map(|g| g.name()).collect();
        let invalid = || FfiError::invalid(format!("\"goal\" is {goal}; use one of {}", allowed.join(", ")));
        spec.options.goal = serde_json::from_value::<Goal>(goal.clone()).map_err(|_| invalid())?;
        spec.validate().map_err(|_| invalid())?;
    }
    let drive = Drive {
        max_parallel: limits.max_parallel.0,
        max_unavailable_per_group: limits.max_unavailable_per_group.0,
        update: own.update,
        eval: req.eval.options(),
        ssh: ssh.options(),
        state: fields.state_dir.0.clone().map_or_else(StateDir::default_location, StateDir::new),
        escalation: Escalation {
            command: fields.escalate.0.clone().unwrap_or_else(|| Escalation::default().command),
            password: fields.sudo_password.0.clone().map(Secret::new),
        },
        command: vec!["ffi".into(), kind.name().into()],
        dry_run: fields.dry_run.0,
        ..Drive::default()
    };
    Ok((spec, drive))
}

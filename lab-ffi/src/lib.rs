//! C ABI over lab-core: JSON in, JSON out, matching the CLI's `--json`.
//!
//! Conventions (see include/lab.h): every call returns a [`LabStatus`] and
//! stores in `*out` either the result (on `LAB_OK`, and on `LAB_ERR_NOT_CLEAN`
//! where the result describes the problems) or an error object
//! `{"kind", "message", "machine"?, "file"?, "hints"?}`, its advice in the
//! API's words (lab_core::hint). Strings lab returns are freed
//! only by [`lab_string_free`]. NULL pointers, invalid UTF-8 and malformed JSON
//! are errors; no panic crosses the boundary; calls are thread-safe (no global
//! mutable state).
#![allow(unsafe_code)]

use std::ffi::{c_char, CString};

use serde_json::{json, Value};

mod boundary;
mod build;
mod request;
mod run;

pub use boundary::LabStatus;
use boundary::{call, request, FfiError};
pub use build::lab_build;
use lab_core::eval::{self, Evaluation};
use lab_core::graph::{self, Limits};
use lab_core::plan::{Plan, PlanKind};
use request::{OneMachine, Request, Select, Ssh};
pub use run::{
    lab_cancel, lab_cancel_free, lab_cancel_new, lab_deploy, lab_evaluate, lab_orchestrate, lab_reboot, LabCancel,
    LabEventCallback,
};

/// The ABI version; bumped on any incompatible change of this C API.
pub const LAB_ABI_VERSION: u32 = 1;

/// lab's version as a NUL-terminated static string; never free it.
#[no_mangle]
pub extern "C" fn lab_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The ABI version of this library ([`LAB_ABI_VERSION`]); callers compare it
/// with the `LAB_ABI_VERSION` of the header they were compiled against.
#[no_mangle]
pub extern "C" fn lab_abi_version() -> u32 {
    LAB_ABI_VERSION
}

/// Frees a string returned by lab. NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string lab returned, freed at most once.
#[no_mangle]
pub unsafe extern "C" fn lab_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: per the contract above, `s` came from CString::into_raw.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// The JSON Schema of one machine's metadata (as `lab schema`).
///
/// # Safety
/// `out` must be NULL (then `LAB_ERR_INVALID_ARGUMENT` is returned) or point
/// to writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn lab_schema(out: *mut *mut c_char) -> LabStatus {
    call(out, || Ok(lab_core::schema::machine_schema()))
}

/// The JSON Schema of a fleet's JSON form, as `lab schema --fleet`: what
/// `lab_machines` returns and a `jsonFile` request reads.
///
/// # Safety
/// As [`lab_schema`].
#[no_mangle]
pub unsafe extern "C" fn lab_fleet_schema(out: *mut *mut c_char) -> LabStatus {
    call(out, || Ok(lab_core::schema::fleet_schema()))
}

impl<C> Request<C> {
    fn evaluate(&self) -> Result<Evaluation, FfiError> {
        self.evaluate_with(&self.eval.options())
    }

    fn evaluate_with(&self, options: &eval::EvalOptions) -> Result<Evaluation, FfiError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let source = self.source.resolve(&cwd).map_err(|e| FfiError::invalid(e.to_string()))?;
        eval::evaluate(&source, options).map_err(|e| {
            // A fleet that manages nothing was read and is not clean, as the
            // CLI's exit 1 says; anything else is a failed evaluation.
            if matches!(e, eval::EvalError::Cancelled) {
                FfiError::core(LabStatus::LabErrCancelled, "cancelled", &e)
            } else if e.fleet_not_clean() {
                FfiError::core(LabStatus::LabErrNotClean, "fleet", &e)
            } else {
                FfiError::core(LabStatus::LabErrEvaluation, "evaluation", &e)
            }
        })
    }
}

/// Every managed machine of a fleet, as `lab machines --json`.
///
/// `request`: `{"flake"|"file"|"hostsDir"+"nixpkgs"|"jsonFile": …}`, plus
/// optionally how to evaluate, as every call that reads a fleet takes it:
/// `"refresh": true` ignores a cached result and evaluates again (the CLI's
/// `--refresh`), `"evalTimeout"`: seconds before nix is stopped (default
/// 600, `--eval-timeout`), `"evalJobs"`: nix processes at once (default 0:
/// automatic, `--eval-jobs`), `"cacheImpure": true` caches a file or hosts
/// directory (`--cache-impure`, whose help says what such a key does not
/// see; flakes are always cached), `"evalWorkerMemory"`: megabytes past
/// which a nix worker is replaced (default 2048, `--eval-worker-memory`).
/// To cancel a read, use [`lab_evaluate`]. A fleet in which no configuration has
/// `lab.machine` is `LAB_ERR_NOT_CLEAN` with an error object saying how to
/// fix it.
///
/// # Safety
/// `request` must be NULL or a NUL-terminated string; `out` as in [`lab_schema`].
#[no_mangle]
pub unsafe extern "C" fn lab_machines(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::<()>::parse(request_json)?;
        Ok(serde_json::to_value(&req.evaluate()?.machines).unwrap_or(Value::Null))
    })
}

/// One machine in full, as `lab show NAME --json`.
///
/// `request`: the fleet source plus `"machine": NAME`.
///
/// # Safety
/// As [`lab_machines`].
#[no_mangle]
pub unsafe extern "C" fn lab_show(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::<(OneMachine,)>::parse(request_json)?;
        let name = req.call.0.machine.get("machine")?;
        let evaluation = req.evaluate()?;
        match evaluation.find(&name) {
            Ok(machine) => Ok(json!({ name.clone(): machine })),
            Err(e) => {
                let (status, kind) = match e {
                    lab_core::eval::LookupError::Failed(_) => (LabStatus::LabErrEvaluation, "evaluation"),
                    _ => (LabStatus::LabErrNotFound, "unknown-machine"),
                };
                Err(FfiError::new(status, kind, e.to_string()).machine(&name))
            }
        }
    })
}

/// The validated graph, narrowed by `on` / `withDependencies` /
/// `withDependents`, and the limits that apply to it (the request's, the
/// fleet's settings filling in what it leaves out): lab-core decides what
/// the selection needs for `purpose` ([`graph::usable`]), as for the CLI;
/// broken machines it does not need are left alone.
fn fleet<C>(
    req: &Request<C>,
    select: &Select,
    limits: &request::Limits,
    purpose: graph::Purpose,
) -> Result<(graph::Fleet, Limits), FfiError> {
    let evaluation = req.evaluate()?;
    let settings = &evaluation.settings;
    let limits = Limits::resolve(limits.max_parallel.0, limits.max_unavailable_per_group.0, settings);
    let expand = graph::Expand { dependencies: select.with_dependencies.0, dependents: select.with_dependents.0 };
    let usable = graph::usable(&evaluation, select.on.0.as_deref(), expand, purpose).map_err(order_error)?;
    Ok((usable.fleet, limits))
}

/// A selection that cannot be used: a wrong `on` is an invalid argument;
/// broken machines it needs are `LAB_ERR_NOT_CLEAN`, with `blocking` (each
/// machine, what is wrong with it and why it is needed) and `problems`.
fn order_error(e: graph::OrderError) -> FfiError {
    let status = if e.fleet_not_clean() { LabStatus::LabErrNotClean } else { LabStatus::LabErrInvalidArgument };
    let mut error = FfiError::core(status, "fleet", &e);
    match &e {
        graph::OrderError::Invalid(problems) => {
            error.object["problems"] = serde_json::to_value(problems).unwrap_or_default();
        }
        graph::OrderError::Blocked(blocked) => {
            let problems: Vec<_> = blocked.blocking.iter().flat_map(|b| b.broken.problems.iter()).collect();
            error.object["problems"] = serde_json::to_value(problems).unwrap_or_default();
            error.object["blocking"] = serde_json::to_value(&blocked.blocking).unwrap_or_default();
        }
        _ => {}
    }
    error
}

/// Checks a fleet, as `lab check --json`: `LAB_OK` when clean, else
/// `LAB_ERR_NOT_CLEAN` with the same report as the result.
///
/// # Safety
/// As [`lab_machines`].
#[no_mangle]
pub unsafe extern "C" fn lab_check(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let report = lab_core::check::check(&Request::<()>::parse(request_json)?.evaluate()?);
        let value = serde_json::to_value(&report).unwrap_or_default();
        if report.clean {
            Ok(value)
        } else {
            Err(FfiError { status: LabStatus::LabErrNotClean, object: value })
        }
    })
}

/// The reboot sequence with its waves, as `lab sequence --json`.
///
/// `request`: the fleet source plus optional `maxParallel`,
/// `maxUnavailablePerGroup`, `on`, `withDependencies`, `withDependents`.
///
/// # Safety
/// As [`lab_machines`].
#[no_mangle]
pub unsafe extern "C" fn lab_sequence(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::<(Select, request::Limits)>::parse(request_json)?;
        let (select, limits) = &req.call;
        let (fleet, limits) = fleet(&req, select, limits, graph::Purpose::Order)?;
        Ok(serde_json::to_value(fleet.sequence(&limits)).unwrap_or_default())
    })
}

/// The plan of a run, as `lab plan KIND --json`.
///
/// `request`: as [`lab_sequence`] plus `"kind": "reboot" | "deploy"`. A
/// selection that needs a machine the run would refuse (any error
/// `lab_check` reports on it) is `LAB_ERR_NOT_CLEAN`, as the run is.
///
/// # Safety
/// As [`lab_machines`].
#[no_mangle]
pub unsafe extern "C" fn lab_plan(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::<(Select, request::Limits, PlanFields)>::parse(request_json)?;
        let (select, limits, plan) = &req.call;
        let kind = match plan.kind.get("kind")?.as_str() {
            "reboot" => PlanKind::Reboot,
            "deploy" => PlanKind::Deploy,
            other => return Err(FfiError::invalid(format!("\"kind\" is \"{other}\"; use \"reboot\" or \"deploy\""))),
        };
        let (fleet, limits) = fleet(&req, select, limits, graph::Purpose::Run)?;
        let plan = Plan::new(kind, &fleet, &limits);
        Ok(serde_json::to_value(&plan).unwrap_or_default())
    })
}

/// The dependency graph with waves, as `lab graph --format json`.
///
/// # Safety
/// As [`lab_machines`].
#[no_mangle]
pub unsafe extern "C" fn lab_graph(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::<(Select, request::Limits)>::parse(request_json)?;
        let (select, limits) = &req.call;
        let (fleet, limits) = fleet(&req, select, limits, graph::Purpose::Order)?;
        let text = graph::render_graph(&fleet, graph::GraphFormat::Json, &limits);
        serde_json::from_str(&text).map_err(|e| FfiError::new(LabStatus::LabErrInternal, "internal", e.to_string()))
    })
}

/// Runs every health check once on the selected machines, as
/// `lab health --json`; `LAB_ERR_NOT_CLEAN` (with the reports) when a
/// required check fails.
///
/// `request`: the fleet source plus optional `on`, `sshOptions` (list of
/// "Key=Value"), `sshConfig` (path), `parallel`.
///
/// # Safety
/// As [`lab_machines`].
#[no_mangle]
pub unsafe extern "C" fn lab_health(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::<(HealthFields, Ssh)>::parse(request_json)?;
        let (health, ssh) = &req.call;
        let evaluation = req.evaluate()?;
        // The same choice as `lab health --on`: dependencies play no part.
        let machines = graph::reachable(&evaluation, health.on.0.as_deref()).map_err(order_error)?.machines;
        let ssh = lab_core::reach::ssh_options(ssh.options(), &evaluation.settings);
        let parallel = health.parallel.0.map_or(lab_core::health::DEFAULT_CONCURRENCY, usize::from);
        let runtime = runtime()?;
        let reports = runtime
            .block_on(lab_core::health::check_machines(&machines, ssh, parallel))
            .map_err(|e| FfiError::new(LabStatus::LabErrEvaluation, "exec", e.to_string()))?;
        let value = serde_json::to_value(&reports).unwrap_or_default();
        if lab_core::health::is_clean(&reports) {
            Ok(value)
        } else {
            Err(FfiError { status: LabStatus::LabErrNotClean, object: value })
        }
    })
}

/// Evaluates a Nix expression to JSON, safely: `{"expr": "...", "args":
/// {"name": "value", ...}, "timeout": seconds}`; the expression and its
/// arguments reach nix as argv (arguments with `--argstr`), never through a
/// shell.
///
/// # Safety
/// `request_json` must be NULL or a NUL-terminated string; `out` as in [`lab_schema`].
#[no_mangle]
pub unsafe extern "C" fn lab_eval_nix(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct EvalRequest {
            expr: String,
            #[serde(default)]
            args: std::collections::BTreeMap<String, String>,
            #[serde(default)]
            timeout: Option<u64>,
        }
        let req: EvalRequest = request(request_json)?;
        let timeout = std::time::Duration::from_secs(req.timeout.unwrap_or(600));
        eval::evaluate_expression(&req.expr, &req.args, Some(timeout))
            .map_err(|e| FfiError::new(LabStatus::LabErrEvaluation, "evaluation", e.to_string()))
    })
}

/// `lab_plan`'s own field: which run to plan.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFields {
    /// "reboot" or "deploy".
    #[serde(default)]
    kind: request::Needed,
}

/// `lab_health`'s own fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthFields {
    /// The `--on` expression (default: every machine).
    #[serde(default)]
    on: request::Text,
    /// Checks attempted at once.
    #[serde(default)]
    parallel: request::Count,
}

/// A runtime for one call's I/O; calls stay independent and thread-safe.
fn runtime() -> Result<tokio::runtime::Runtime, FfiError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| FfiError::new(LabStatus::LabErrInternal, "internal", format!("cannot start a runtime: {e}")))
}

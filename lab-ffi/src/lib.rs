//! C ABI over lab-core: JSON in, JSON out, matching the CLI's `--json`.
//!
//! Conventions (see include/lab.h): every call returns a [`LabStatus`] and
//! stores in `*out` either the result (on `LAB_OK`, and on `LAB_ERR_NOT_CLEAN`
//! where the result describes the problems) or an error object
//! `{"kind", "message", "machine"?, "file"?}`. Strings lab returns are freed
//! only by [`lab_string_free`]. NULL pointers, invalid UTF-8 and malformed JSON
//! are errors; no panic crosses the boundary; calls are thread-safe (no global
//! mutable state).
#![allow(unsafe_code)]

use std::ffi::{c_char, CString};

use serde_json::{json, Value};

mod boundary;

pub use boundary::LabStatus;
use boundary::{call, request, FfiError};
use lab_core::eval::{self, Evaluation, SourceSpec};

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

/// A request: the fleet source fields of [`SourceSpec`] plus the call's own
/// fields, which are taken out first so that a misspelt field is an error.
struct Request {
    source: SourceSpec,
    rest: serde_json::Map<String, Value>,
}

impl Request {
    fn parse(ptr: *const c_char, own_fields: &[&str]) -> Result<Request, FfiError> {
        let Value::Object(mut object) = request::<Value>(ptr)? else {
            return Err(FfiError::invalid("the request must be a JSON object"));
        };
        let rest = own_fields.iter().filter_map(|f| object.remove_entry(*f)).collect();
        let source = serde_json::from_value(Value::Object(object))
            .map_err(|e| FfiError::invalid(format!("the request is not valid: {e}")))?;
        Ok(Request { source, rest })
    }

    fn string(&self, field: &str) -> Result<String, FfiError> {
        match self.rest.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(FfiError::invalid(format!("the request needs \"{field}\": a string"))),
        }
    }

    fn evaluate(&self) -> Result<Evaluation, FfiError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let source = self.source.resolve(&cwd).map_err(|e| FfiError::invalid(e.to_string()))?;
        eval::evaluate(&source, &eval_options())
            .map_err(|e| FfiError::new(LabStatus::LabErrEvaluation, "evaluation", e.to_string()))
    }
}

/// How the FFI evaluates: the XDG cache, automatic parallelism, the
/// CLI's default timeout.
fn eval_options() -> eval::EvalOptions {
    eval::EvalOptions {
        cache_dir: eval::default_cache_dir(),
        timeout: Some(std::time::Duration::from_secs(600)),
        ..eval::EvalOptions::default()
    }
}

/// Every managed machine of a fleet, as `lab machines --json`.
///
/// `request`: `{"flake"|"file"|"hostsDir"+"nixpkgs"|"jsonFile": …}`.
///
/// # Safety
/// `request` must be NULL or a NUL-terminated string; `out` as in [`lab_schema`].
#[no_mangle]
pub unsafe extern "C" fn lab_machines(request_json: *const c_char, out: *mut *mut c_char) -> LabStatus {
    call(out, || {
        let req = Request::parse(request_json, &[])?;
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
        let req = Request::parse(request_json, &["machine"])?;
        let name = req.string("machine")?;
        let evaluation = req.evaluate()?;
        match evaluation.machines.get(&name) {
            Some(machine) => Ok(json!({ name.clone(): machine })),
            None => Err(FfiError::new(
                LabStatus::LabErrNotFound,
                "unknown-machine",
                format!("no machine named `{name}` in the fleet"),
            )
            .machine(&name)),
        }
    })
}

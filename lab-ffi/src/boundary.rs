//! The one way across the C boundary: arguments checked, panics caught,
//! results and errors handed out as NUL-terminated JSON owned by lab.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use lab_core::hint::{reword, Hinted, Vocabulary};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Status codes; numbers are fixed and never reused.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabStatus {
    /// Success; the result is JSON.
    LabOk = 0,
    /// A NULL pointer, invalid UTF-8 or malformed JSON argument.
    LabErrInvalidArgument = 1,
    /// A named machine does not exist.
    LabErrNotFound = 2,
    /// The fleet could not be evaluated.
    LabErrEvaluation = 3,
    /// The call ran and found problems (e.g. a check that is not clean);
    /// the result is still JSON describing them.
    LabErrNotClean = 4,
    /// A long run was cancelled; the result is its report.
    LabErrCancelled = 5,
    /// Another run holds the fleet's lock; nothing was done.
    LabErrLocked = 6,
    /// A run could not start or go on (journal, state directory, ssh
    /// setup); the message says why.
    LabErrRun = 7,
    /// Something lab did not expect (a caught panic); report it as a bug.
    LabErrInternal = 99,
}

/// An error as the caller sees it: a status and a JSON object with `kind`,
/// `message` and, when known, `machine` and `file`.
#[derive(Debug)]
pub struct FfiError {
    /// The status returned.
    pub status: LabStatus,
    /// The JSON error object.
    pub object: Value,
}

impl FfiError {
    /// An error with the given status, kind and message.
    pub fn new(status: LabStatus, kind: &str, message: impl Into<String>) -> Self {
        FfiError { status, object: json!({ "kind": kind, "message": message.into() }) }
    }

    /// An error from lab-core, its advice in the C API's words (request
    /// fields and function names instead of the CLI's flags and commands)
    /// and listed under `hints`.
    pub fn core(status: LabStatus, kind: &str, error: &(impl std::fmt::Display + Hinted)) -> Self {
        let hints = error.hints();
        let message = reword(&error.to_string(), &hints, Vocabulary::Api);
        let mut e = FfiError::new(status, kind, message);
        if !hints.is_empty() {
            e.object["hints"] = json!(hints);
        }
        e
    }

    /// Adds the machine concerned.
    pub fn machine(mut self, machine: &str) -> Self {
        self.object["machine"] = json!(machine);
        self
    }

    /// A bad argument.
    pub fn invalid(message: impl Into<String>) -> Self {
        FfiError::new(LabStatus::LabErrInvalidArgument, "invalid-argument", message)
    }
}

/// Reads a JSON request from a C string; NULL, bad UTF-8 and bad JSON are errors.
pub fn request<T: DeserializeOwned>(ptr: *const c_char) -> Result<T, FfiError> {
    if ptr.is_null() {
        return Err(FfiError::invalid("the request is NULL; pass a JSON object, e.g. \"{}\""));
    }
    // SAFETY: the caller promises a NUL-terminated string (documented in lab.h).
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|e| FfiError::invalid(format!("the request is not valid UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| FfiError::invalid(format!("the request is not valid: {e}")))
}

/// Runs `f` behind the panic boundary and stores its result or error in `*out`.
pub fn call(out: *mut *mut c_char, f: impl FnOnce() -> Result<Value, FfiError>) -> LabStatus {
    if out.is_null() {
        return LabStatus::LabErrInvalidArgument;
    }
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(FfiError::new(LabStatus::LabErrInternal, "internal", format!("lab panicked: {what}; please report this")))
    });
    let (status, value) = match result {
        Ok(value) => (LabStatus::LabOk, value),
        Err(e) => (e.status, e.object),
    };
    // SAFETY: checked non-null above; the caller owns the pointed-to slot.
    unsafe { *out = into_c_string(value.to_string()) };
    status
}

/// Hands a string to C; freed only by `lab_string_free`.
pub fn into_c_string(text: String) -> *mut c_char {
    // JSON text never holds a NUL byte (it is escaped as \u0000).
    CString::new(text).unwrap_or_default().into_raw()
}

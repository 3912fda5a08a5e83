//! What the C API's tests share: calling an entry point with a JSON request
//! the way a C caller does (NUL-terminated request, an out slot, the answer
//! freed with `lab_string_free`) and finding the built library. Each test
//! binary uses part of it.
#![allow(dead_code)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;

use lab::{lab_string_free, LabCancel, LabEventCallback, LabStatus};
use serde_json::Value;

/// A read entry point: `lab_machines`, `lab_sequence`, `lab_check`, …
pub type Entry = unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> LabStatus;

/// A long run: `lab_deploy`, `lab_reboot`, `lab_orchestrate`, `lab_build`.
pub type RunEntry =
    unsafe extern "C" fn(*const c_char, LabEventCallback, *mut c_void, *const LabCancel, *mut *mut c_char) -> LabStatus;

/// Takes lab's answer: its text as JSON, the string freed once.
fn answer(out: *mut c_char) -> Value {
    assert!(!out.is_null(), "every call answers");
    // SAFETY: lab returned a NUL-terminated string it owns; freed once, here.
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    unsafe { lab_string_free(out) };
    serde_json::from_str(&text).expect("every answer is JSON")
}

/// Calls `entry` with the bytes of `request` (NUL added; `None` passes NULL).
pub fn call_raw(entry: Entry, request: Option<&[u8]>) -> (LabStatus, Value) {
    let owned = request.map(|r| CString::new(r).unwrap());
    let ptr = owned.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: a valid (or NULL) C string and a valid out slot.
    let status = unsafe { entry(ptr, &mut out) };
    (status, answer(out))
}

/// Calls `entry` with `request`.
pub fn call(entry: Entry, request: &Value) -> (LabStatus, Value) {
    call_raw(entry, Some(request.to_string().as_bytes()))
}

/// Collects each event's JSON text into the `Vec<String>` behind `user_data`.
unsafe extern "C" fn collect(event: *const c_char, user_data: *mut c_void) {
    // SAFETY: lab passes a valid string; user_data is the caller's Vec.
    let events = unsafe { &mut *(user_data as *mut Vec<String>) };
    events.push(unsafe { CStr::from_ptr(event) }.to_string_lossy().into_owned());
}

/// A long run with `request`, no callback, no cancel handle.
pub fn run(entry: RunEntry, request: &Value) -> (LabStatus, Value) {
    let request = CString::new(request.to_string()).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: a valid request and out slot, no callback, no cancel handle.
    let status = unsafe { entry(request.as_ptr(), None, std::ptr::null_mut(), std::ptr::null(), &mut out) };
    (status, answer(out))
}

/// A long run with `request` whose events are collected, as JSON text.
pub fn run_collecting(entry: RunEntry, request: &Value) -> (LabStatus, Value, Vec<String>) {
    let request = CString::new(request.to_string()).unwrap();
    let mut events: Vec<String> = Vec::new();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: valid request, a callback with its Vec (alive for the call), no cancel handle, valid out slot.
    let status = unsafe {
        entry(
            request.as_ptr(),
            Some(collect),
            &mut events as *mut Vec<String> as *mut c_void,
            std::ptr::null(),
            &mut out,
        )
    };
    (status, answer(out), events)
}

/// Where cargo put liblab.so: target/<profile>, beside deps/ that holds the test.
pub fn lib_dir() -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

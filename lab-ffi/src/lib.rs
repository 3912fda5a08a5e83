//! C ABI over lab-core. For now: the version.
#![allow(unsafe_code)]

use std::ffi::c_char;

/// lab's version as a NUL-terminated static string; never free it.
#[no_mangle]
pub extern "C" fn lab_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

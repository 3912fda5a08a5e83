//! `lab health --on X` and `lab_health({"on": X})` answer alike on a fleet
//! whose graph is broken (issue 18): one machine fails to evaluate, two
//! depend on each other, one depends on a machine that does not exist. The
//! selection is lab-core's (`graph::reachable`), the report's verdict too
//! (`health::is_clean`); this test asks the built `lab` binary and the built
//! cdylib (loaded with dlopen, as a C program links it) the same questions
//! on the same fleet (real nix) and compares the answers.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_core::hint::{reword, Hint, Vocabulary};
use serde_json::{json, Value};

/// `a` throws; `b` and `c` need each other; `d` needs `ghost`, which is no
/// machine; `e` stands alone without checks. `b`, `c` and `d` have a
/// required check run from the controller that fails at once (nothing
/// listens on 127.0.0.2:9), so no ssh is needed.
const FLEET: &str = r#"
let m = name: deps: checks: {
  config = {
    networking.hostName = name;
    lab.machine = {
      role = "server"; rebootOrder = 0; dependencies = deps; targetHost = "${name}.lan";
      healthChecks = checks;
    };
  };
};
closed = [ { type = "tcp"; host = "127.0.0.2"; port = 9; runOn = "controller"; timeout = 5; } ];
in {
  nixosConfigurations = {
    a = throw "a is broken on purpose";
    b = m "b" [ "c" ] closed;
    c = m "c" [ "b" ] closed;
    d = m "d" [ "ghost" ] closed;
    e = m "e" [ ] [ ];
  };
}
"#;

/// target/<profile>/, where `cargo build --workspace` puts `lab` and liblab.so.
fn target_dir() -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

type Entry = unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> i32;
type Free = unsafe extern "C" fn(*mut c_char);

/// The C API as a C program sees it: liblab.so, opened and looked up by name.
struct Library {
    health: Entry,
    free: Free,
}

impl Library {
    fn open(path: &Path) -> Library {
        let path = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; the handle is never closed, so the
        // function pointers stay valid for the test's life.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!handle.is_null(), "dlopen liblab.so failed");
        let symbol = |name: &str| -> *mut c_void {
            let name = CString::new(name).unwrap();
            // SAFETY: a live handle and a valid C string.
            let symbol = unsafe { libc::dlsym(handle, name.as_ptr()) };
            assert!(!symbol.is_null(), "liblab.so lacks {name:?}");
            symbol
        };
        // SAFETY: the symbols are the functions lab.h declares with these signatures.
        unsafe {
            Library {
                health: std::mem::transmute::<*mut c_void, Entry>(symbol("lab_health")),
                free: std::mem::transmute::<*mut c_void, Free>(symbol("lab_string_free")),
            }
        }
    }

    fn health(&self, request: &Value) -> (i32, Value) {
        let request = CString::new(request.to_string()).unwrap();
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: a valid request and out slot; the result is lab's, freed once.
        let status = unsafe { (self.health)(request.as_ptr(), &mut out) };
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        unsafe { (self.free)(out) };
        (status, serde_json::from_str(&text).unwrap())
    }
}

/// Reports without their latencies, which differ from call to call.
fn without_latency(mut reports: Value) -> Value {
    for report in reports.as_array_mut().into_iter().flatten() {
        report.as_object_mut().unwrap().remove("latencyMs");
    }
    reports
}

#[test]
fn lab_health_and_the_c_api_select_alike_on_a_broken_graph() {
    let target = target_dir();
    let (lab, liblab) = (target.join("lab"), target.join("liblab.so"));
    assert!(
        lab.exists() && liblab.exists(),
        "`lab` or liblab.so is not built in {}; run `cargo build --workspace` first (./dev test does)",
        target.display()
    );
    let library = Library::open(&liblab);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.nix");
    std::fs::write(&file, FLEET).unwrap();
    let cache = dir.path().join("cache");
    // The C API reads the XDG cache of the process, as the CLI does.
    std::env::set_var("XDG_CACHE_HOME", &cache);

    // (selection, exit code of the CLI, status of the C API): 0 / LAB_OK,
    // 1 / LAB_ERR_NOT_CLEAN, 2 / LAB_ERR_INVALID_ARGUMENT.
    let cases: [(Option<&str>, i32, i32); 7] = [
        (Some("b"), 1, 4),   // on a cycle: reached, its check fails
        (Some("c,e"), 1, 4), // a cycle member and a sound machine
        (Some("d"), 1, 4),   // a missing dependency: reached all the same
        (Some("e"), 0, 0),   // no checks: a clean, empty report
        (None, 1, 4),        // the whole fleet: `a` left alone
        (Some("a"), 1, 4),   // failed to evaluate: blocks
        (Some("zzz"), 2, 1), // selects nothing
    ];
    for (on, code, status) in cases {
        let mut args = vec!["--file".to_string(), file.display().to_string(), "health".into(), "--json".into()];
        let mut request = json!({ "file": file });
        if let Some(on) = on {
            args.extend(["--on".to_string(), on.to_string()]);
            request["on"] = json!(on);
        }
        let out = Command::new("timeout")
            .arg("300")
            .arg(&lab)
            .args(&args)
            .env("XDG_CACHE_HOME", &cache)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let (c_status, answer) = library.health(&request);
        let what = format!("--on {on:?}: CLI exit {:?}\n{stdout}\n{stderr}\nC API {c_status}: {answer}", out.status);
        assert_eq!((out.status.code(), c_status), (Some(code), status), "{what}");
        if answer.is_array() {
            // Both ran the checks: the same reports, in the same order.
            let printed: Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(without_latency(printed), without_latency(answer.clone()), "{what}");
            let machines: Vec<&str> =
                answer.as_array().unwrap().iter().map(|r| r["machine"].as_str().unwrap()).collect();
            let expected: Vec<&str> = match on {
                Some("b") => vec!["b"],
                Some("c,e") => vec!["c"],
                Some("d") => vec!["d"],
                Some("e") => vec![],
                _ => vec!["b", "c", "d"],
            };
            assert_eq!(machines, expected, "{what}");
        } else {
            // Both refused, for the same reason, in the same words (the
            // advice in each one's vocabulary: `lab check`, lab_check).
            let message = answer["message"].as_str().unwrap();
            let hints = [Hint::RaiseEvalTimeout, Hint::RunCheck, Hint::ListMachines];
            assert!(reword(&stderr, &hints, Vocabulary::Api).contains(message), "{what}");
            assert!(stdout.is_empty(), "{what}");
        }
    }
}

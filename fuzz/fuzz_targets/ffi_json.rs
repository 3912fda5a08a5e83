//! The C entry points with arbitrary bytes as the request, on a JSON-file
//! fleet: every call answers a status and JSON (an error object naming
//! `kind` and `message` when it fails), and none panics (LAB_ERR_INTERNAL).
//!
//! nix is kept out of reach (PATH is emptied, the working directory has no
//! flake.nix), and requests naming another fleet source are skipped, so the
//! fuzzer never reads files it picks.
#![no_main]

use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

use lab::LabStatus;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const FLEET: &str = r#"{
  "router": {"role": "router", "rebootOrder": 0, "groups": ["core"]},
  "dns-1": {"role": "dns", "rebootOrder": 1, "groups": ["dns"], "dependencies": ["router"]},
  "web": {"role": "web", "rebootOrder": 2, "dependencies": ["dns-1"],
          "healthChecks": [{"type": "http", "url": "https://u:p@web/health?token=t"}]}
}"#;

const SOURCES: [&str; 5] = ["flake", "file", "hostsDir", "nixpkgs", "jsonFile"];

type Entry = unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> LabStatus;

const ENTRIES: [(&str, Entry); 6] = [
    ("machines", lab::lab_machines),
    ("show", lab::lab_show),
    ("sequence", lab::lab_sequence),
    ("plan", lab::lab_plan),
    ("graph", lab::lab_graph),
    ("check", lab::lab_check),
];

/// The fleet file, made once; also takes nix out of reach.
fn fleet_file() -> &'static str {
    static FILE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fleet.json");
            std::fs::write(&path, FLEET).unwrap();
            std::env::set_var("PATH", "");
            std::env::set_var("XDG_CACHE_HOME", dir.path().join("cache"));
            std::env::set_current_dir(dir.path()).unwrap();
            let path = path.display().to_string();
            (dir, path)
        })
        .1
}

fn call(name: &str, entry: Entry, request: &[u8]) {
    // C strings end at the first NUL.
    let end = request.iter().position(|b| *b == 0).unwrap_or(request.len());
    let request = CString::new(&request[..end]).unwrap();
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: a valid C string and a valid out slot, as lab.h asks.
    let status = unsafe { entry(request.as_ptr(), &mut out) };
    assert!(!out.is_null(), "{name}: every call answers");
    // SAFETY: lab returned a NUL-terminated string it owns.
    let text = unsafe { CStr::from_ptr(out) }.to_str().expect("answers are UTF-8").to_owned();
    // SAFETY: returned by lab, freed once.
    unsafe { lab::lab_string_free(out) };
    assert_ne!(status, LabStatus::LabErrInternal, "{name} panicked: {text}");
    let value: Value = serde_json::from_str(&text).expect("answers are JSON");
    if !matches!(status, LabStatus::LabOk | LabStatus::LabErrNotClean) {
        assert!(value["kind"].is_string() && value["message"].is_string(), "{name}: {text}");
    }
}

fuzz_target!(|data: &[u8]| {
    let file = fleet_file();
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    if let Some(Value::Object(object)) = &parsed {
        if SOURCES.iter().any(|s| object.contains_key(*s)) {
            return;
        }
        // The same request on the fleet file, so selection, limits and
        // kinds are exercised on real machines.
        let mut with_fleet = object.clone();
        with_fleet.insert("jsonFile".into(), Value::String(file.to_string()));
        let bytes = serde_json::to_vec(&with_fleet).unwrap();
        for (name, entry) in ENTRIES {
            call(name, entry, &bytes);
        }
    }
    for (name, entry) in ENTRIES {
        call(name, entry, data);
    }
});

//! The CLI's evaluation options through the C API: `refresh`, `evalTimeout`
//! and `evalJobs` are accepted by every call that reads a fleet and mean
//! what `--refresh`, `--eval-timeout` and `--eval-jobs` mean (real nix).

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use lab::{
    lab_build, lab_check, lab_graph, lab_health, lab_machines, lab_plan, lab_reboot, lab_sequence, lab_show,
    lab_string_free, LabStatus,
};
use serde_json::{json, Value};

mod common;
use common::{call, Entry};

/// The evaluation cache of these tests is their own, never the user's: set
/// once, before any test reads the environment (every test calls this first).
fn setup() {
    static CACHE: Once = Once::new();
    CACHE.call_once(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        std::env::set_var("XDG_CACHE_HOME", dir);
    });
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lab-core/tests/fixtures")
}

/// The five-host fixture flake, copied into a fresh directory (a flake is
/// read purely, so its cached result stays current while nothing changes).
fn flake() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("flake/flake.nix"), dir.path().join("flake.nix")).unwrap();
    std::fs::copy(fixtures().join("fleets/lib.nix"), dir.path().join("lib.nix")).unwrap();
    dir
}

#[test]
fn refresh_evaluates_again_where_the_cache_would_answer() {
    setup();
    let dir = flake();
    let flake = dir.path().to_str().unwrap();
    let (status, machines) = call(lab_machines, &json!({ "flake": flake }));
    assert_eq!(status, LabStatus::LabOk, "{machines}");
    assert_eq!(machines.as_object().unwrap().len(), 5);
    // A cached answer starts no nix, so no timeout can stop it...
    let (status, cached) = call(lab_machines, &json!({ "flake": flake, "evalTimeout": 0 }));
    assert_eq!(status, LabStatus::LabOk, "served from the cache: {cached}");
    assert_eq!(cached, machines);
    // ...while `refresh` runs nix again, which a zero timeout stops.
    let (status, error) = call(lab_machines, &json!({ "flake": flake, "evalTimeout": 0, "refresh": true }));
    assert_eq!(status, LabStatus::LabErrEvaluation, "{error}");
    assert!(error["message"].as_str().unwrap().contains("exceeded"), "{error}");
    // And `refresh` with time to finish gives the fleet as it is now.
    let (status, refreshed) = call(lab_machines, &json!({ "flake": flake, "refresh": true, "evalJobs": 2 }));
    assert_eq!(status, LabStatus::LabOk, "{refreshed}");
    assert_eq!(refreshed, machines);
}

#[test]
fn eval_timeout_stops_a_slow_fleet() {
    setup();
    let slow = fixtures().join("fleets/slow.nix");
    let started = Instant::now();
    let (status, error) = call(lab_sequence, &json!({ "file": slow, "evalTimeout": 0.3, "refresh": true }));
    assert_eq!(status, LabStatus::LabErrEvaluation, "{error}");
    assert_eq!(error["kind"], "evaluation");
    assert!(error["message"].as_str().unwrap().contains("exceeded"), "{error}");
    // slow.nix takes a minute or more: well under that, the timeout stopped it.
    assert!(started.elapsed() < Duration::from_secs(40), "{:?}", started.elapsed());
}

#[test]
fn a_read_is_cancelled_from_another_thread() {
    setup();
    let slow = fixtures().join("fleets/slow.nix");
    let request = CString::new(json!({ "file": slow, "refresh": true, "evalWorkerMemory": 4096 }).to_string()).unwrap();
    let cancel = lab::lab_cancel_new();
    let handle = cancel as usize;
    let started = Instant::now();
    let firing = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: the handle lives until after this thread is joined.
        unsafe { lab::lab_cancel(handle as *const lab::LabCancel) };
    });
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: a valid request, a live cancel handle, a valid out slot.
    let status = unsafe { lab::lab_evaluate(request.as_ptr(), cancel, &mut out) };
    firing.join().unwrap();
    // SAFETY: lab's string, freed once; the handle freed once, after use.
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    unsafe { lab_string_free(out) };
    unsafe { lab::lab_cancel_free(cancel) };
    assert_eq!(status, LabStatus::LabErrCancelled, "{text}");
    assert!(text.contains("cancelled"), "{text}");
    // slow.nix takes a minute or more: nix was stopped, not waited for.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    // Not cancelled: the whole evaluation.
    let example = fixtures().join("fleets/example.json");
    let (status, value) = {
        let request = CString::new(json!({ "jsonFile": example }).to_string()).unwrap();
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: as above, no cancel handle.
        let status = unsafe { lab::lab_evaluate(request.as_ptr(), std::ptr::null(), &mut out) };
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        unsafe { lab_string_free(out) };
        (status, serde_json::from_str::<Value>(&text).unwrap())
    };
    assert_eq!(status, LabStatus::LabOk, "{value}");
    assert!(value["machines"].as_object().is_some_and(|m| !m.is_empty()), "{value}");
}

#[test]
fn every_read_takes_the_options_and_refuses_bad_values() {
    setup();
    let example = fixtures().join("fleets/example.json");
    let options = json!({ "jsonFile": example, "refresh": true, "evalTimeout": 30, "evalJobs": 1 });
    let with = |extra: Value| {
        let mut request = options.clone();
        request.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        request
    };
    let entries: [(&str, Entry, Value); 6] = [
        ("machines", lab_machines, json!({})),
        ("show", lab_show, json!({ "machine": "router" })),
        ("check", lab_check, json!({})),
        ("sequence", lab_sequence, json!({ "maxParallel": 2 })),
        ("plan", lab_plan, json!({ "kind": "reboot" })),
        ("graph", lab_graph, json!({})),
    ];
    for (name, entry, extra) in &entries {
        let (status, value) = call(*entry, &with(extra.clone()));
        assert_eq!(status, LabStatus::LabOk, "{name}: {value}");
    }
    // health and build read the fleet first: the options pass, the call's
    // own error follows (no such machine).
    for (name, entry) in [("health", lab_health as Entry), ("build", lab_build)] {
        let extra = if name == "build" { json!({ "machine": "nope" }) } else { json!({ "on": "nope" }) };
        let (status, value) = call(entry, &with(extra));
        assert_ne!(status, LabStatus::LabOk, "{name}: {value}");
        let message = value["message"].as_str().unwrap();
        assert!(!message.contains("unknown field"), "{name}: {message}");
    }
    // Long runs take them too.
    let mut out: *mut c_char = std::ptr::null_mut();
    let request = CString::new(with(json!({ "dryRun": true })).to_string()).unwrap();
    // SAFETY: a valid request, no callback, no cancel handle, a valid out slot.
    let status = unsafe { lab_reboot(request.as_ptr(), None, std::ptr::null_mut(), std::ptr::null(), &mut out) };
    // SAFETY: lab's string, freed once.
    let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
    unsafe { lab_string_free(out) };
    assert_eq!(status, LabStatus::LabOk, "{text}");

    for (bad, field) in [
        (json!({ "evalTimeout": "600" }), "\"evalTimeout\""),
        (json!({ "evalTimeout": -1 }), "\"evalTimeout\""),
        (json!({ "refresh": "yes" }), "\"refresh\""),
        (json!({ "evalJobs": -2 }), "\"evalJobs\""),
        (json!({ "evalJobs": 1.5 }), "\"evalJobs\""),
    ] {
        let (status, error) = call(lab_machines, &with(bad.clone()));
        assert_eq!(status, LabStatus::LabErrInvalidArgument, "{bad}: {error}");
        assert!(error["message"].as_str().unwrap().contains(field), "{bad}: {error}");
    }
}

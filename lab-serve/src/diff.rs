//! `/api/diff/{machine}`: what deploying its configuration would change on
//! a machine ([`lab_core::diff`], as `lab plan deploy --diff` shows it).
//! Asked for by a person (the page's button), never by the probe loop: it
//! evaluates and builds the new system locally and reads the running
//! system's closure on the machine. One diff is made at a time, and an
//! answer is kept while the machine runs the same system and its
//! configuration evaluates to the same one.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lab_core::diff::{fleet_diff_built, MachineDiff};

use crate::state::Shared;

/// The diffs made so far, by machine, with what each was made against.
#[derive(Default)]
pub struct Diffs {
    // A tokio mutex: held across the build, so a second request waits for
    // the first one's answer instead of building the same system again.
    made: tokio::sync::Mutex<BTreeMap<String, (Key, serde_json::Value)>>,
}

/// What a diff depends on: the system the machine ran when it was made and
/// the one its configuration evaluated to (both as last probed).
type Key = (Option<String>, Option<String>);

/// The route's state.
pub type DiffState = (Arc<Shared>, Arc<Diffs>);

/// `GET /api/diff/{machine}`: the machine's diff (`lab plan deploy --diff
/// --json`'s entry for it); 404 for a machine the server does not show,
/// 501 when the fleet's source cannot build systems (the JSON contract).
pub async fn machine(State((shared, diffs)): State<DiffState>, Path(name): Path<String>) -> Response {
    let Some(reached) = shared.fleet.machines.iter().find(|r| r.machine.name == name) else {
        return (StatusCode::NOT_FOUND, format!("no machine {name:?} in this fleet\n")).into_response();
    };
    let Some(builder) = shared.fleet.builder.as_deref() else {
        let why = "this fleet's source has no systems to build (a JSON contract); serve a flake, --file or --hosts-dir";
        return (StatusCode::NOT_IMPLEMENTED, format!("{why}\n")).into_response();
    };
    let snapshot = shared.snapshot();
    let status = snapshot.statuses.iter().find(|s| s.machine == name);
    let key: Key = (status.and_then(|s| s.current_system.clone()), status.and_then(|s| s.expected_system.clone()));
    let mut made = diffs.made.lock().await;
    if let Some((at, answer)) = made.get(&name) {
        if *at == key && key.0.is_some() {
            return Json(answer.clone()).into_response();
        }
    }
    let diff = match fleet_diff_built(builder, std::slice::from_ref(reached), 1, &mut |_| {}).await {
        Ok(mut diffs) => diffs.pop().unwrap_or_else(|| failed(&name, "no diff was made".into())),
        // Evaluating or building the new system failed: nothing was read on the machine.
        Err(e) => failed(&name, e.to_string()),
    };
    let answer = serde_json::to_value(&diff).unwrap_or_default();
    if diff.error.is_none() {
        made.insert(name, (key, answer.clone()));
    }
    Json(answer).into_response()
}

fn failed(machine: &str, error: String) -> MachineDiff {
    MachineDiff { machine: machine.to_string(), diff: None, error: Some(error) }
}

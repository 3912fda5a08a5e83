//! The routes: JSON under `/api/`, `/metrics`, and the page. Each handler
//! reads what [`Shared`] holds or what lab-core reads from the state
//! directory, and renders it; none changes a machine.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lab_core::store::now_ms;

use crate::auth::{self, Token};
use crate::state::Shared;

/// Every route, the API's behind the token (when there is one).
pub fn router(shared: Arc<Shared>, token: Option<Token>) -> Router {
    let api = Router::new()
        .route("/api/status", get(status))
        .route("/api/graph", get(graph))
        .route("/api/runs", get(runs))
        .route("/api/runs/{run_id}", get(run))
        .route("/api/events", get(crate::live::events))
        .route("/metrics", get(metrics))
        .merge(
            Router::new()
                .route("/api/diff/{machine}", get(crate::diff::machine))
                .with_state((shared.clone(), Arc::new(crate::diff::Diffs::default()))),
        )
        .route_layer(axum::middleware::from_fn_with_state(token, auth::require))
        .with_state(shared);
    // The page and its assets hold no data: they load without the token,
    // and ask for it when the API answers 401.
    Router::new().route("/", get(index)).route("/assets/{*file}", get(asset)).merge(api)
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(shared.status_json())
}

/// `{"waves": [["db"], ["web", "api"]], "edges": [["web", "db"]], "svg": "<svg…>"}`:
/// each edge is (dependent, dependency); the SVG draws the waves.
async fn graph(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let fleet = &shared.fleet.graph;
    let waves: Vec<Vec<&str>> =
        fleet.waves(&shared.fleet.limits).iter().map(|w| w.iter().map(|m| m.name.as_str()).collect()).collect();
    let mut edges: Vec<[&str; 2]> = fleet
        .machines()
        .iter()
        .flat_map(|m| fleet.dependencies(&m.name).into_iter().map(move |d| [m.name.as_str(), d.name.as_str()]))
        .collect();
    edges.sort();
    let svg = lab_core::graph::render_svg(fleet, &shared.fleet.limits);
    Json(serde_json::json!({"waves": waves, "edges": edges, "svg": svg}))
}

async fn runs(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let runs = tokio::task::spawn_blocking(move || shared.history().runs_newest_first()).await.unwrap_or_default();
    Json(serde_json::to_value(runs).unwrap_or_default())
}

/// One run: its timeline per machine, read from its journal
/// ([`lab_core::timeline`]).
async fn run(State(shared): State<Arc<Shared>>, Path(run_id): Path<String>) -> Response {
    use lab_core::timeline::{self, TimelineError};
    let state = shared.options.state.clone();
    // timeline::read takes only run ids that name a journal file in runs/.
    match tokio::task::spawn_blocking(move || timeline::read(&state, &run_id)).await {
        Ok(Ok(timeline)) => Json(timeline).into_response(),
        Ok(Err(TimelineError::NoSuchRun { .. } | TimelineError::Empty { .. })) => {
            (StatusCode::NOT_FOUND, "no such run\n").into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let snapshot = shared.snapshot();
    let reader = shared.clone();
    let history = tokio::task::spawn_blocking(move || reader.history()).await.unwrap_or_default();
    match lab_core::metrics::fleet_metrics(&snapshot.statuses, snapshot.probed_at_ms, &history, now_ms()) {
        Ok(text) => ([(header::CONTENT_TYPE, lab_core::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn index() -> Response {
    asset_response("index.html")
}

async fn asset(Path(file): Path<String>) -> Response {
    asset_response(&file)
}

fn asset_response(path: &str) -> Response {
    match crate::assets::get(path) {
        Some((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

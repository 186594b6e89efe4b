//! A fast, stateful stand-in for the Flink REST endpoints sync reads
//! (`/jobs/overview`, `/jobs/{id}`, `/jobs/{id}/exceptions`), serving jobs a
//! test or the benchmark sets, and counting requests by endpoint. The real
//! cluster is used wherever a real job is needed; this is for fleets of
//! thousands of jobs and for states a test must set at will.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct FakeJob {
    pub state: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The root exception `/exceptions` reports, for failed jobs.
    pub root_exception: Option<String>,
    /// Left out of `/jobs/overview` (still answered by `/jobs/{id}`), as a
    /// job whose overview entry was evicted.
    pub hidden_from_overview: bool,
}

impl FakeJob {
    pub fn new(state: &str, start_ms: i64, end_ms: i64) -> FakeJob {
        FakeJob {
            state: state.to_string(),
            start_ms,
            end_ms,
            root_exception: None,
            hidden_from_overview: false,
        }
    }
}

#[derive(Default)]
pub struct FlinkFake {
    jobs: Mutex<BTreeMap<String, FakeJob>>,
    overview: AtomicU64,
    job: AtomicU64,
    exceptions: AtomicU64,
}

impl FlinkFake {
    pub fn with_jobs(jobs: BTreeMap<String, FakeJob>) -> Arc<FlinkFake> {
        Arc::new(FlinkFake {
            jobs: Mutex::new(jobs),
            ..Default::default()
        })
    }

    pub fn set(&self, id: &str, job: FakeJob) {
        self.jobs_mut().insert(id.to_string(), job);
    }

    /// Leaves `id` out of the overview from now on (it stays at `/jobs/{id}`).
    pub fn hide_from_overview(&self, id: &str) {
        if let Some(j) = self.jobs_mut().get_mut(id) {
            j.hidden_from_overview = true;
        }
    }

    fn jobs_mut(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FakeJob>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests served by endpoint since the last call, and resets them.
    pub fn take_counts(&self) -> BTreeMap<String, u64> {
        let take = |a: &AtomicU64| a.swap(0, Ordering::Relaxed);
        [
            ("GET /jobs/overview", take(&self.overview)),
            ("GET /jobs/{id}", take(&self.job)),
            ("GET /jobs/{id}/exceptions", take(&self.exceptions)),
        ]
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Serves on a free 127.0.0.1 port; returns the base URL.
    pub async fn serve(self: &Arc<FlinkFake>) -> String {
        let app = axum::Router::new()
            .route("/jobs/overview", get(overview))
            .route("/jobs/{id}", get(job))
            .route("/jobs/{id}/exceptions", get(exceptions))
            .with_state(self.clone());
        crate::stack::serve_local(app).await
    }
}

fn details(id: &str, j: &FakeJob) -> Value {
    json!({"jid": id, "name": "fake", "state": j.state, "start-time": j.start_ms,
        "end-time": j.end_ms, "duration": if j.end_ms > 0 { j.end_ms - j.start_ms } else { 1 }})
}

async fn overview(State(s): State<Arc<FlinkFake>>) -> axum::Json<Value> {
    s.overview.fetch_add(1, Ordering::Relaxed);
    let jobs: Vec<Value> = s
        .jobs_mut()
        .iter()
        .filter(|(_, j)| !j.hidden_from_overview)
        .map(|(id, j)| details(id, j))
        .collect();
    axum::Json(json!({ "jobs": jobs }))
}

async fn job(State(s): State<Arc<FlinkFake>>, Path(id): Path<String>) -> Response {
    s.job.fetch_add(1, Ordering::Relaxed);
    match s.jobs_mut().get(&id) {
        Some(j) => axum::Json(details(&id, j)).into_response(),
        None => not_found(),
    }
}

async fn exceptions(State(s): State<Arc<FlinkFake>>, Path(id): Path<String>) -> Response {
    s.exceptions.fetch_add(1, Ordering::Relaxed);
    match s.jobs_mut().get(&id) {
        None => not_found(),
        Some(j) => {
            let entries: Vec<Value> = j
                .root_exception
                .iter()
                .map(|e| json!({"exceptionName": "java.lang.RuntimeException", "stacktrace": e, "timestamp": j.end_ms}))
                .collect();
            let root = j.root_exception.clone();
            axum::Json(json!({"root-exception": root, "exceptionHistory": {"entries": entries, "truncated": false}}))
                .into_response()
        }
    }
}

fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(json!({"errors": ["Job could not be found."]})),
    )
        .into_response()
}

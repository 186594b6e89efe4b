//! A fast, stateful stand-in for the Flink REST endpoints sync reads
//! (`/jobs/overview`, `/jobs/{id}`, `/jobs/{id}/exceptions`, and the health
//! look's `/jobs/{id}/checkpoints`, `/jobs/{id}/checkpoints/config` and
//! `/jobs/{id}/metrics`), serving jobs a test or the benchmark sets, in Flink
//! 2.3's shapes (`shared/tests/fixtures/flink/health/`), and counting
//! requests by endpoint. The real cluster is used wherever a real job is
//! needed; this is for fleets of thousands of jobs and for states a test must
//! set at will.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
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
    /// `numRestarts`, as `/jobs/{id}/metrics` reports it.
    pub restarts: u64,
    /// The checkpoint interval. `None`: checkpointing off, which Flink 2.3
    /// answers (for a streaming job) with counts of zero and an interval of
    /// Long.MAX. With one, a checkpoint completes every interval from the
    /// start to the end (or to now), each with an external path.
    pub checkpoint_interval_ms: Option<u64>,
    /// The job's tasks (`tasks.total` in the overview), all in the state the
    /// job's state implies.
    pub tasks: u64,
}

impl FakeJob {
    pub fn new(state: &str, start_ms: i64, end_ms: i64) -> FakeJob {
        FakeJob {
            state: state.to_string(),
            start_ms,
            end_ms,
            root_exception: None,
            hidden_from_overview: false,
            restarts: 0,
            checkpoint_interval_ms: None,
            tasks: 2,
        }
    }

    /// The same job, checkpointing every `interval_ms` (retained on
    /// cancellation).
    pub fn checkpointing(mut self, interval_ms: u64) -> FakeJob {
        self.checkpoint_interval_ms = Some(interval_ms.max(1));
        self
    }
}

/// The endpoint names of a health look's requests, as [`FlinkFake::take_counts`] keys them.
pub const HEALTH_ENDPOINTS: [&str; 3] = [
    "GET /jobs/{id}/checkpoints",
    "GET /jobs/{id}/checkpoints/config",
    "GET /jobs/{id}/metrics",
];

#[derive(Default)]
pub struct FlinkFake {
    jobs: Mutex<BTreeMap<String, FakeJob>>,
    overview: AtomicU64,
    job: AtomicU64,
    exceptions: AtomicU64,
    checkpoints: AtomicU64,
    checkpoint_config: AtomicU64,
    metrics: AtomicU64,
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
            (HEALTH_ENDPOINTS[0], take(&self.checkpoints)),
            (HEALTH_ENDPOINTS[1], take(&self.checkpoint_config)),
            (HEALTH_ENDPOINTS[2], take(&self.metrics)),
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
            .route("/jobs/{id}/checkpoints", get(checkpoints))
            .route("/jobs/{id}/checkpoints/config", get(checkpoint_config))
            .route("/jobs/{id}/metrics", get(metrics))
            .with_state(self.clone());
        crate::stack::serve_local(app).await
    }
}

fn details(id: &str, j: &FakeJob) -> Value {
    json!({"jid": id, "name": "fake", "state": j.state, "start-time": j.start_ms,
        "end-time": j.end_ms, "duration": if j.end_ms > 0 { j.end_ms - j.start_ms } else { 1 }})
}

/// An overview entry: the details with the task counts by state and the
/// time of the last state change, as Flink 2.3 lists them.
fn overview_entry(id: &str, j: &FakeJob) -> Value {
    let mut v = details(id, j);
    let mut tasks = serde_json::Map::new();
    for k in [
        "running",
        "canceling",
        "canceled",
        "total",
        "created",
        "scheduled",
        "deploying",
        "reconciling",
        "finished",
        "initializing",
        "failed",
    ] {
        tasks.insert(k.to_string(), json!(0));
    }
    let n = j.tasks;
    tasks.insert("total".to_string(), json!(n));
    let mut set = |k: &str, v: u64| _ = tasks.insert(k.to_string(), json!(v));
    match j.state.as_str() {
        "RUNNING" => set("running", n),
        "FINISHED" => set("finished", n),
        "CANCELED" | "CANCELLING" | "SUSPENDED" => set("canceled", n),
        "FAILED" | "FAILING" | "RESTARTING" => {
            set("failed", n.min(1));
            set("canceled", n.saturating_sub(1));
        }
        _ => set("created", n),
    }
    let last_modification = if j.end_ms > 0 { j.end_ms } else { j.start_ms };
    if let Some(o) = v.as_object_mut() {
        o.insert("last-modification".to_string(), json!(last_modification));
        o.insert("tasks".to_string(), Value::Object(tasks));
    }
    v
}

async fn overview(State(s): State<Arc<FlinkFake>>) -> axum::Json<Value> {
    s.overview.fetch_add(1, Ordering::Relaxed);
    let jobs: Vec<Value> = s
        .jobs_mut()
        .iter()
        .filter(|(_, j)| !j.hidden_from_overview)
        .map(|(id, j)| overview_entry(id, j))
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

/// Checkpoints Flink keeps in `history` (`web.checkpoints.history`).
const HISTORY: u64 = 10;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The completed checkpoints of `j` as of `now`: how many, and when the
/// last one was acknowledged.
fn completed(j: &FakeJob, interval: u64, now: i64) -> u64 {
    let until = if j.end_ms > 0 { j.end_ms } else { now };
    u64::try_from(until.saturating_sub(j.start_ms)).unwrap_or(0) / interval
}

fn checkpoint_entry(id: &str, j: &FakeJob, interval: u64, n: u64, latest: u64) -> Value {
    let acked = j.start_ms + (n * interval) as i64;
    json!({"className": "completed", "id": n, "status": "COMPLETED", "is_savepoint": false,
        "savepointFormat": null, "trigger_timestamp": acked - 10, "latest_ack_timestamp": acked,
        "checkpointed_size": 0, "state_size": 0, "end_to_end_duration": 10, "alignment_buffered": 0,
        "processed_data": 0, "persisted_data": 0, "num_subtasks": j.tasks,
        "num_acknowledged_subtasks": j.tasks, "checkpoint_type": "CHECKPOINT", "tasks": {},
        "external_path": format!("file:/tmp/fjs-fake/ckpt/{id}/chk-{n}"),
        // Flink discards all but the newest retained checkpoint.
        "discarded": n != latest})
}

fn stats_summary() -> Value {
    let s = json!({"min": 0, "max": 0, "avg": 0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "p999": 0.0});
    json!({"checkpointed_size": s, "state_size": s, "end_to_end_duration": s,
        "alignment_buffered": s, "processed_data": s, "persisted_data": s})
}

async fn checkpoints(State(s): State<Arc<FlinkFake>>, Path(id): Path<String>) -> Response {
    s.checkpoints.fetch_add(1, Ordering::Relaxed);
    let Some(j) = s.jobs_mut().get(&id).cloned() else {
        return not_found();
    };
    let n = j
        .checkpoint_interval_ms
        .map_or(0, |i| completed(&j, i, now_ms()));
    let history: Vec<Value> = match j.checkpoint_interval_ms {
        Some(i) => (n.saturating_sub(HISTORY - 1).max(1)..=n)
            .rev()
            .map(|k| checkpoint_entry(&id, &j, i, k, n))
            .collect(),
        None => Vec::new(),
    };
    let latest = history.first().cloned().unwrap_or(Value::Null);
    axum::Json(json!({
        "counts": {"restored": 0, "total": n, "in_progress": 0, "completed": n, "failed": 0},
        "summary": stats_summary(),
        "latest": {"completed": latest, "savepoint": null, "failed": null, "restored": null},
        "history": history,
    }))
    .into_response()
}

async fn checkpoint_config(State(s): State<Arc<FlinkFake>>, Path(id): Path<String>) -> Response {
    s.checkpoint_config.fetch_add(1, Ordering::Relaxed);
    let Some(j) = s.jobs_mut().get(&id).cloned() else {
        return not_found();
    };
    let (mode, interval, externalized, storage) = match j.checkpoint_interval_ms {
        Some(i) => ("exactly_once", i, true, "FileSystemCheckpointStorage"),
        None => (
            "at_least_once",
            i64::MAX as u64,
            false,
            "JobManagerCheckpointStorage",
        ),
    };
    axum::Json(
        json!({"mode": mode, "interval": interval, "timeout": 600000, "min_pause": 0,
        "max_concurrent": 1,
        "externalization": {"enabled": externalized, "delete_on_cancellation": !externalized},
        "state_backend": "HashMapStateBackend", "checkpoint_storage": storage,
        "unaligned_checkpoints": false, "tolerable_failed_checkpoints": 0,
        "aligned_checkpoint_timeout": 0, "checkpoints_after_tasks_finish": true,
        "state_changelog_enabled": false, "changelog_periodic_materialization_interval": 600000,
        "changelog_storage": "memory"}),
    )
    .into_response()
}

/// `?get=a,b`: the values of the metrics asked for that the job has (as
/// strings, as Flink sends them); without `get`, the ids it has.
async fn metrics(
    State(s): State<Arc<FlinkFake>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.metrics.fetch_add(1, Ordering::Relaxed);
    let Some(j) = s.jobs_mut().get(&id).cloned() else {
        return not_found();
    };
    let n = j
        .checkpoint_interval_ms
        .map_or(0, |i| completed(&j, i, now_ms()));
    let known = [
        ("numRestarts", j.restarts.to_string()),
        ("numberOfCompletedCheckpoints", n.to_string()),
        ("numberOfFailedCheckpoints", "0".to_string()),
    ];
    let body: Vec<Value> = match q.get("get") {
        None => known.iter().map(|(k, _)| json!({"id": k})).collect(),
        Some(wanted) => wanted
            .split(',')
            .filter_map(|w| known.iter().find(|(k, _)| *k == w.trim()))
            .map(|(k, v)| json!({"id": k, "value": v}))
            .collect(),
    };
    axum::Json(Value::Array(body)).into_response()
}

fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(json!({"errors": ["Job could not be found."]})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flink_job_sync::adapters::flink::FlinkClient;
    use flink_job_sync::rules::health::{Checkpoints, Tasks};
    use flink_job_sync::rules::model::FlinkJobId;

    const START: i64 = 1_795_000_000_000;

    fn jid(n: u8) -> FlinkJobId {
        FlinkJobId::parse(&format!("{n:032x}")).unwrap_or_else(|| panic!("jid {n}"))
    }

    /// The product's own client reads the stand-in's answers as it reads
    /// Flink 2.3's, and the stand-in counts each under its endpoint.
    #[tokio::test]
    async fn the_product_reads_the_health_answers() {
        let mut looping = FakeJob::new("RESTARTING", START, -1);
        looping.restarts = 7;
        let fake = FlinkFake::with_jobs(BTreeMap::from([
            (
                jid(1).to_string(),
                FakeJob::new("FINISHED", START, START + 125_000).checkpointing(60_000),
            ),
            (jid(2).to_string(), looping),
            (
                jid(3).to_string(),
                FakeJob::new("RUNNING", START, -1).checkpointing(60_000),
            ),
        ]));
        let url = fake.serve().await;
        let client = FlinkClient::new(&url, None, std::time::Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}"));

        let overview = client.overview().await.unwrap_or_else(|e| panic!("{e}"));
        let tasks = |n: u8| overview.get(&jid(n)).and_then(|j| j.tasks);
        assert_eq!(
            tasks(1),
            Some(Tasks {
                total: 2,
                running: 0,
                finished: 2
            })
        );
        assert_eq!(
            tasks(3),
            Some(Tasks {
                total: 2,
                running: 2,
                finished: 0
            })
        );
        assert_eq!(
            overview.get(&jid(1)).map(|j| j.last_modification_ms),
            Some(START + 125_000)
        );

        let ended = client.health(&jid(1), None).await;
        let at = |ms: i64| chrono::TimeZone::timestamp_millis_opt(&chrono::Utc, ms).single();
        let c = match ended.checkpoints {
            Ok(Some(c)) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (c.completed, c.failed, c.last_completed_id, c.interval_ms),
            (2, 0, Some(2), Some(60_000))
        );
        assert_eq!(
            c.last_completed.map(|p| (p.path, p.at)),
            Some((
                format!("file:/tmp/fjs-fake/ckpt/{}/chk-2", jid(1)),
                at(START + 120_000)
            ))
        );
        assert_eq!(c.last_savepoint, None);
        assert_eq!(ended.restarts, Ok(Some(0)));
        // Checkpointing off: no checkpoints to keep; the restarts are read.
        let off = client.health(&jid(2), None).await;
        assert_eq!((off.checkpoints, off.restarts), (Ok(None), Ok(Some(7))));
        // A running job's newest checkpoint is at most one interval old.
        let running = client.health(&jid(3), None).await;
        let newest = match running.checkpoints {
            Ok(Some(c)) => c.last_completed.and_then(|p| p.at),
            other => panic!("{other:?}"),
        };
        let age = newest.map(|t| chrono::Utc::now() - t);
        assert!(
            age.is_some_and(|a| a <= chrono::Duration::seconds(61)),
            "{age:?}"
        );
        // The config is not asked again once the record holds it.
        let known = Checkpoints {
            interval_ms: Some(60_000),
            ..Default::default()
        };
        fake.take_counts();
        let again = client.health(&jid(3), Some(&known)).await;
        assert!(matches!(again.checkpoints, Ok(Some(_))), "{again:?}");
        assert_eq!(
            fake.take_counts(),
            BTreeMap::from([
                (HEALTH_ENDPOINTS[0].to_string(), 1),
                (HEALTH_ENDPOINTS[2].to_string(), 1),
            ])
        );
        // An unknown job: 404 everywhere, as before.
        let unknown = client.health(&jid(9), None).await;
        assert_eq!(
            (unknown.checkpoints, unknown.restarts),
            (Ok(None), Ok(None))
        );
    }
}

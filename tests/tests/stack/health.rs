//! Job health and restart points on the stack's real Flink 2.3: streaming
//! jobs with checkpoints to a local directory (retained on cancellation or
//! not), one stopped with a savepoint, one in a restart loop, a bounded one,
//! and a finished job only the History Server still knows. Each record goes
//! through the product's real `Syncer`.

use std::path::Path;
use std::time::Duration;

use flink_job_sync::adapters::store::record::to_bson_date;
use mongodb::bson::{Document, doc};
use serde_json::Value;
use test_kit::flinkfake::{FakeJob, FlinkFake};
use test_kit::scenario::{
    JobState, Scenario, finished_flink_job_id, submit_streaming_with_options, wait_for_flink_state,
};
use test_kit::stack::{Stack, eventually};

/// A record whose JobID is known, as after its first sync.
fn submitted(job_id: &str, flink_id: &str) -> Document {
    doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": flink_id,
    "submitted_at": to_bson_date(chrono::Utc::now())}
}

async fn get(stack: &Stack, path: &str) -> Value {
    reqwest::get(format!("{}{path}", stack.flink_rest_url()))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Waits until Flink has completed `n` checkpoints of the job.
async fn checkpoints_completed(stack: &Stack, id: &str, n: u64) -> Value {
    eventually(
        &format!("{n} checkpoints of {id}"),
        Duration::from_secs(90),
        || async {
            let c = get(stack, &format!("/jobs/{id}/checkpoints")).await;
            match c["counts"]["completed"].as_u64() {
                Some(done) if done >= n => Ok(c),
                other => Err(format!("completed {other:?}")),
            }
        },
    )
    .await
}

/// The last completed checkpoint Flink names for a job that has ended, once
/// its answer has settled: the JobManager caches checkpoint figures for up
/// to about 3 s, so right after the end it may still name one it then
/// discards. Two reads that far apart agreeing are the settled answer.
async fn settled_last_checkpoint(stack: &Stack, id: &str) -> String {
    let apart = Duration::from_millis(flink_job_sync::rules::health::SETTLE_MS as u64);
    let read = || async {
        get(stack, &format!("/jobs/{id}/checkpoints")).await["latest"]["completed"]["external_path"]
            .as_str()
            .map(str::to_string)
    };
    let mut before = read().await;
    for _ in 0..5 {
        // Waits out the cache it cannot poll through.
        tokio::time::sleep(apart).await;
        let now = read().await;
        if let Some(path) = now.as_ref().filter(|_| now == before) {
            return path.clone();
        }
        before = now;
    }
    panic!("Flink's last checkpoint of {id} did not settle: {before:?}")
}

async fn cancel(stack: &Stack, id: &str) {
    reqwest::Client::new()
        .patch(format!("{}/jobs/{id}?mode=cancel", stack.flink_rest_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("cancel {id}: {e}"));
    wait_for_flink_state(stack, id, "CANCELED").await;
}

/// `flink stop --savepointPath <dir>/sp`: the job ends FINISHED with a savepoint.
async fn stop_with_savepoint(stack: &Stack, id: &str, dir: &Path) {
    let target = format!("file://{}/sp", dir.display());
    let flink = format!("{}/bin/flink", test_kit::stack::require("FLINK_HOME"));
    let out = std::process::Command::new(flink)
        .args([
            "stop",
            "-m",
            &stack.flink_jobmanager(),
            "--savepointPath",
            &target,
            id,
        ])
        .output()
        .unwrap_or_else(|e| panic!("flink stop: {e}"));
    assert!(
        out.status.success(),
        "flink stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `file:/dir/...` → `/dir/...`.
fn local(path: &str) -> &Path {
    Path::new(path.trim_start_matches("file:"))
}

fn checkpointing(dir: &Path, retain: bool) -> Vec<String> {
    let mut o = vec![
        "-Dexecution.checkpointing.interval=1s".to_string(),
        format!("-Dstate.checkpoints.dir=file://{}", dir.display()),
    ];
    if retain {
        o.push(
            "-Dexecution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION"
                .into(),
        );
    }
    o
}

async fn streaming(stack: &Stack, script: &str, options: &[String]) -> String {
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let id = submit_streaming_with_options(stack, script, &options).await;
    wait_for_flink_state(stack, &id, "RUNNING").await;
    id
}

fn text<'a>(d: &'a Document, path: &str) -> Option<&'a str> {
    match path.split_once('.') {
        Some((a, b)) => d.get_document(a).ok()?.get_str(b).ok(),
        None => d.get_str(path).ok(),
    }
}

#[tokio::test]
async fn a_retained_checkpoint_is_where_a_cancelled_job_restarts() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    let id = streaming(
        &stack,
        "checkpointed_stream.py",
        &checkpointing(dir.path(), true),
    )
    .await;
    checkpoints_completed(&stack, &id, 2).await;
    s.insert(submitted("ckpt-retained", &id)).await;

    let summary = s.sync().await;
    assert_eq!(summary.health_checked, 1, "{summary:?}");
    let r = s.record("ckpt-retained").await;
    assert_eq!(text(&r, "status"), Some("RUNNING"), "{r}");
    assert_eq!(text(&r, "health"), Some("HEALTHY"), "{r}");
    let path = text(&r, "checkpoint.last_completed_path").unwrap_or_else(|| panic!("{r}"));
    assert!(local(path).is_dir(), "{path} exists on disk");
    assert!(
        r.get_document("checkpoint")
            .is_ok_and(|c| c.get_i64("completed").is_ok_and(|n| n >= 2))
    );

    cancel(&stack, &id).await;
    let last = settled_last_checkpoint(&stack, &id).await;
    s.sync().await;
    let r = s.record("ckpt-retained").await;
    assert_eq!(text(&r, "status"), Some("CANCELLED"), "{r}");
    assert_eq!(text(&r, "restart_point"), Some(last.as_str()), "{r}");
    assert!(
        local(&last).is_dir(),
        "the retained {last} is still on disk"
    );
    assert_eq!(
        text(&r, "health"),
        Some("HEALTHY"),
        "a final record keeps its last health"
    );
}

#[tokio::test]
async fn a_cancelled_job_whose_checkpoints_flink_deletes_has_no_restart_point_and_says_why() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    let id = streaming(
        &stack,
        "checkpointed_stream.py",
        &checkpointing(dir.path(), false),
    )
    .await;
    checkpoints_completed(&stack, &id, 1).await;
    s.insert(submitted("ckpt-deleted", &id)).await;
    s.sync().await;
    cancel(&stack, &id).await;
    s.sync().await;
    let r = s.record("ckpt-deleted").await;
    assert_eq!(text(&r, "status"), Some("CANCELLED"), "{r}");
    assert_eq!(text(&r, "restart_point"), None, "{r}");
    let why = text(&r, "restart_point_reason").unwrap_or_else(|| panic!("a reason: {r}"));
    assert!(why.contains("deletes"), "{why}");
}

#[tokio::test]
async fn a_job_stopped_with_a_savepoint_finishes_with_the_savepoint_as_restart_point() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    let id = streaming(
        &stack,
        "checkpointed_stream.py",
        &checkpointing(dir.path(), false),
    )
    .await;
    checkpoints_completed(&stack, &id, 1).await;
    s.insert(submitted("ckpt-savepoint", &id)).await;
    s.sync().await;
    stop_with_savepoint(&stack, &id, dir.path()).await;
    wait_for_flink_state(&stack, &id, "FINISHED").await;
    s.sync().await;
    let r = s.record("ckpt-savepoint").await;
    assert_eq!(text(&r, "status"), Some("FINISHED"), "{r}");
    let point = text(&r, "restart_point").unwrap_or_else(|| panic!("{r}"));
    assert!(point.contains("/sp/savepoint-"), "{point}");
    assert!(local(point).exists(), "{point} exists on disk");
    assert_eq!(text(&r, "checkpoint.last_savepoint_path"), Some(point));
}

#[tokio::test]
async fn a_job_in_a_restart_loop_is_degraded_while_its_status_stays_running() {
    let stack = Stack::from_env();
    let s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    let options = [
        "-Drestart-strategy.type=fixed-delay".to_string(),
        "-Drestart-strategy.fixed-delay.attempts=1000".to_string(),
        "-Drestart-strategy.fixed-delay.delay=1s".to_string(),
    ];
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let id = submit_streaming_with_options(&stack, "restart_loop.py", &options).await;
    // The metric lags the restarts by up to its fetch interval.
    eventually("numRestarts reaches 3", Duration::from_secs(90), || async {
        let m = get(&stack, &format!("/jobs/{id}/metrics?get=numRestarts")).await;
        match m[0]["value"].as_str().and_then(|v| v.parse::<u64>().ok()) {
            Some(n) if n >= 3 => Ok(n),
            other => Err(format!("numRestarts {other:?}")),
        }
    })
    .await;
    s.insert(submitted("loop-1", &id)).await;
    let summary = s.sync().await;
    let r = s.record("loop-1").await;
    assert_eq!(
        text(&r, "status"),
        Some("RUNNING"),
        "health never changes status: {r}"
    );
    assert_eq!(text(&r, "health"), Some("DEGRADED"), "{r}");
    let codes: Vec<&str> = r
        .get_array("health_reasons")
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_document()?.get_str("code").ok())
        .collect();
    assert!(codes.contains(&"restart_loop"), "{r}");
    assert!(r.get_i64("restarts").is_ok_and(|n| n >= 3), "{r}");
    assert_eq!(
        summary.degraded.get("restart_loop"),
        Some(&1),
        "{summary:?}"
    );
    assert_eq!(
        r.get_array("health_history").map(Vec::len).ok(),
        Some(1),
        "recorded once: {r}"
    );
    cancel(&stack, &id).await;
    s.sync().await;
    let r = s.record("loop-1").await;
    assert_eq!(text(&r, "status"), Some("CANCELLED"), "{r}");
    assert_eq!(text(&r, "health"), Some("DEGRADED"), "kept: {r}");
}

#[tokio::test]
async fn a_bounded_job_without_checkpointing_is_healthy_and_finished_with_no_checkpoint() {
    let stack = Stack::from_env();
    let s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    let id = finished_flink_job_id(&stack).await;
    s.insert(submitted("bounded-h", &id)).await;
    s.sync().await;
    let r = s.record("bounded-h").await;
    assert_eq!(text(&r, "status"), Some("FINISHED"), "{r}");
    assert_eq!(text(&r, "health"), Some("HEALTHY"), "{r}");
    assert!(
        r.get("checkpoint").is_none(),
        "no checkpointing, no checkpoint: {r}"
    );
    let why = text(&r, "restart_point_reason").unwrap_or_else(|| panic!("{r}"));
    assert!(why.contains("no checkpointing"), "{why}");
}

#[tokio::test]
async fn a_finished_job_the_jobmanager_forgot_gets_its_restart_point_from_the_history_server() {
    let stack = Stack::from_env();
    let history = test_kit::stack::require("FLINK_HISTORY_URL");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let id = streaming(
        &stack,
        "checkpointed_stream.py",
        &checkpointing(dir.path(), false),
    )
    .await;
    checkpoints_completed(&stack, &id, 1).await;
    stop_with_savepoint(&stack, &id, dir.path()).await;
    let http = reqwest::Client::new();
    eventually(
        "the History Server has the job",
        Duration::from_secs(60),
        || async {
            let r = http
                .get(format!("{history}/jobs/{id}/checkpoints"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", r.status()))
            }
        },
    )
    .await;
    // A JobManager that no longer knows the job: an empty overview, 404 for it.
    let forgetful = test_kit::flinkfake::FlinkFake::with_jobs(Default::default());
    let jm = forgetful.serve().await;
    let s = Scenario::new(&jm, &[("FLINK_HISTORY_URL", history.as_str())]).await;
    s.insert(submitted("from-history", &id)).await;
    s.sync().await;
    let r = s.record("from-history").await;
    assert_eq!(text(&r, "status"), Some("FINISHED"), "{r}");
    let point = text(&r, "restart_point").unwrap_or_else(|| panic!("{r}"));
    assert!(point.contains("/sp/savepoint-"), "{point}");
}

/// A Flink that answers the job's state well and its health badly: the
/// checkpoint and metric answers are `checkpoints` and `metrics`.
async fn flink_with_bad_health(id: &str, checkpoints: String, metrics: String) -> String {
    use axum::routing::get;
    let now = chrono::Utc::now().timestamp_millis();
    let job = serde_json::json!({"jid": id, "state": "RUNNING", "start-time": now - 3_600_000,
        "end-time": -1, "last-modification": now - 3_600_000,
        "tasks": {"total": 2, "running": 2, "finished": 0}});
    let overview = serde_json::json!({"jobs": [job.clone()]}).to_string();
    let config = r#"{"interval": 1000, "externalization": {"enabled": true, "delete_on_cancellation": false}}"#;
    let app = axum::Router::new()
        .route("/jobs/overview", get(move || async move { overview }))
        .route("/jobs/{id}", get(move || async move { job.to_string() }))
        .route(
            "/jobs/{id}/checkpoints",
            get(move || async move { checkpoints }),
        )
        .route(
            "/jobs/{id}/checkpoints/config",
            get(move || async move { config }),
        )
        .route("/jobs/{id}/metrics", get(move || async move { metrics }));
    test_kit::stack::serve_local(app).await
}

#[tokio::test]
async fn garbled_health_answers_are_reported_bounded_and_change_no_status() {
    let id = "badc0ffee0000000000000000000beef";
    let huge = format!("file:/{}", "x".repeat(100_000));
    let cases = [
        ("garbled-json", r#"{"counts": {"completed": 3,"#.to_string(), r#"[{"id":"numRestarts","value":"0"}]"#.to_string()),
        (
            "not-a-count",
            r#"{"counts": {"completed": 0, "failed": 0}, "latest": {}}"#.to_string(),
            format!(r#"[{{"id":"numRestarts","value":"{}"}}]"#, "9".repeat(5000)),
        ),
        (
            "huge-path",
            serde_json::json!({"counts": {"completed": 1, "failed": 0},
                "latest": {"completed": {"id": 1, "external_path": huge, "latest_ack_timestamp": chrono::Utc::now().timestamp_millis(), "discarded": false}},
                "surprise": {"nested": [1, 2, 3]}})
            .to_string(),
            r#"[{"id":"numRestarts","value":"0"}]"#.to_string(),
        ),
    ];
    for (name, checkpoints, metrics) in cases {
        let url = flink_with_bad_health(id, checkpoints, metrics).await;
        let s = Scenario::new(&url, &[]).await;
        s.insert(
            doc! {"job_id": name, "status": "RUNNING", "flink_job_id": id,
            "flink_state": "RUNNING", "submitted_at": to_bson_date(chrono::Utc::now()),
            "owner": "team-a"},
        )
        .await;
        let summary = s.sync().await;
        let r = s.record(name).await;
        assert_eq!(text(&r, "status"), Some("RUNNING"), "{name}: {r}");
        assert_eq!(
            text(&r, "owner"),
            Some("team-a"),
            "{name}: untouched fields stay: {r}"
        );
        assert!(
            r.to_string().len() < 16 * 1024,
            "{name}: bounded record: {} bytes",
            r.to_string().len()
        );
        match name {
            "huge-path" => {
                assert_eq!(text(&r, "health"), Some("HEALTHY"), "{name}: {r}");
                assert_eq!(
                    text(&r, "checkpoint.last_completed_path"),
                    None,
                    "{name}: {r}"
                );
            }
            _ => {
                assert_eq!(text(&r, "health"), Some("UNKNOWN"), "{name}: {r}");
                let e = text(&r, "sync_error").unwrap_or_else(|| panic!("{name}: reported: {r}"));
                assert!(e.starts_with("flink: health: "), "{name}: {e}");
                assert!(
                    summary.errors.iter().any(|x| x.job_id == name),
                    "{name}: {summary:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_job_whose_health_did_not_change_costs_no_counted_change_on_the_next_look() {
    let id = "5ab1e000000000000000000000000001";
    let now = chrono::Utc::now().timestamp_millis();
    let checkpoints = serde_json::json!({"counts": {"completed": 4, "failed": 0},
        "latest": {"completed": {"id": 4, "external_path": "file:/ck/chk-4",
            "latest_ack_timestamp": now, "discarded": false}}})
    .to_string();
    let url = flink_with_bad_health(
        id,
        checkpoints,
        r#"[{"id":"numRestarts","value":"0"}]"#.to_string(),
    )
    .await;
    let s = Scenario::new(&url, &[]).await;
    s.insert(
        doc! {"job_id": "steady", "status": "RUNNING", "flink_job_id": id,
        "flink_state": "RUNNING", "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let first = s.sync().await;
    assert_eq!(
        (
            first.health_checked,
            first.health_changes,
            first.records_changed
        ),
        (1, 1, 1),
        "{first:?}"
    );
    let revision = s.record("steady").await.get_i64("revision").ok();
    let again = s.sync().await;
    assert_eq!(
        (
            again.health_checked,
            again.health_changes,
            again.records_changed
        ),
        (1, 0, 0),
        "{again:?}"
    );
    let r = s.record("steady").await;
    assert_eq!(
        r.get_array("health_history").map(Vec::len).ok(),
        Some(1),
        "{r}"
    );
    assert!(
        r.get_i64("revision").ok() > revision,
        "the look itself is still recorded: {r}"
    );
}

/// A record already following its running job, as after earlier runs.
fn following(job_id: &str, flink_id: &str) -> Document {
    doc! {"job_id": job_id, "status": "RUNNING", "flink_job_id": flink_id,
    "flink_state": "RUNNING", "submitted_at": to_bson_date(chrono::Utc::now())}
}

/// A job the stand-in reports running for a minute, checkpointing.
fn running_for_a_minute() -> FakeJob {
    let now = chrono::Utc::now().timestamp_millis();
    FakeJob::new("RUNNING", now - 60_000, -1).checkpointing(10_000)
}

#[tokio::test]
async fn the_health_budget_spreads_looks_over_runs_never_checked_then_oldest_first() {
    let ids: Vec<String> = (1..=3).map(|n: u32| format!("{n:032x}")).collect();
    let flink = FlinkFake::with_jobs(
        ids.iter()
            .map(|id| (id.clone(), running_for_a_minute()))
            .collect(),
    );
    let s = Scenario::new(&flink.serve().await, &[("HEALTH_BUDGET", "1")]).await;
    for (n, id) in ids.iter().enumerate() {
        s.insert(following(&format!("budget-{n}"), id)).await;
    }
    let mut order = Vec::new();
    for run in 0..4 {
        let summary = s.sync().await;
        assert_eq!(
            summary.health_checked, 1,
            "run {run}: one look, the budget: {summary:?}"
        );
        // The record looked at last is the one with the newest check.
        let mut latest = None;
        for n in 0..3 {
            let job_id = format!("budget-{n}");
            let r = s.record(&job_id).await;
            if let Ok(at) = r.get_datetime("health_checked_at")
                && latest.as_ref().is_none_or(|(t, _)| at > t)
            {
                latest = Some((*at, job_id));
            }
        }
        order.push(
            latest
                .unwrap_or_else(|| panic!("run {run} looked at none"))
                .1,
        );
    }
    let first_three: std::collections::BTreeSet<&String> = order[..3].iter().collect();
    assert_eq!(
        first_three.len(),
        3,
        "every job once before any twice: {order:?}"
    );
    assert_eq!(
        order[3], order[0],
        "then the one checked longest ago: {order:?}"
    );
}

#[tokio::test]
async fn a_submitting_pod_restarting_since_the_last_look_degrades_the_job() {
    let id = format!("{:032x}", 7);
    let flink = FlinkFake::with_jobs([(id.clone(), running_for_a_minute())].into());
    let s = Scenario::new(&flink.serve().await, &[]).await;
    s.insert(following("attached-1", &id)).await;
    let pod = s.k8s_job("attached-1", JobState::Running).await;
    s.set_restarts(&pod, 1).await;
    s.sync().await;
    let r = s.record("attached-1").await;
    assert_eq!(
        text(&r, "health"),
        Some("HEALTHY"),
        "the first look sets the baseline: {r}"
    );
    assert_eq!(r.get_i64("submitter_restarts").ok(), Some(1), "{r}");

    s.set_restarts(&pod, 3).await;
    let summary = s.sync().await;
    let r = s.record("attached-1").await;
    assert_eq!(text(&r, "health"), Some("DEGRADED"), "{r}");
    let codes: Vec<&str> = r
        .get_array("health_reasons")
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_document()?.get_str("code").ok())
        .collect();
    assert_eq!(codes, ["submitter_restarting"], "{r}");
    assert_eq!(
        summary.degraded.get("submitter_restarting"),
        Some(&1),
        "{summary:?}"
    );
}

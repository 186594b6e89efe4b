//! The bound of a record's histories (`STATUS_HISTORY_MAX`): more health
//! changes than the bound leave only the last ones, oldest first.

use std::collections::BTreeMap;

use flink_job_sync::adapters::store::record::to_bson_date;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use mongodb::bson::{Bson, Document, doc};
use serde_json::json;
use test_kit::flinkfake::{FakeJob, FlinkFake};
use test_kit::scenario::{JobState, NS, Scenario};

/// Sets the restart count of the submitting pod's container.
async fn restarts(s: &Scenario, pod: &str, n: i32) {
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), NS);
    let status = json!({"status": {"containerStatuses": [{"name": "flink-client", "image": "flink:2.3.0",
        "imageID": "", "ready": true, "restartCount": n,
        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
    pods.patch_status(pod, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap_or_else(|e| panic!("pod {pod} restarts: {e}"));
}

/// `(from, to, reason codes)` of each `health_history` entry.
fn health_history(r: &Document) -> Vec<(Option<String>, String, Vec<String>)> {
    let entries = r
        .get_array("health_history")
        .unwrap_or_else(|e| panic!("health_history: {e}: {r}"));
    entries
        .iter()
        .map(|e| {
            let e = e.as_document().unwrap_or_else(|| panic!("entry {e}"));
            let from = match e.get("from") {
                Some(Bson::String(s)) => Some(s.clone()),
                _ => None,
            };
            let codes = e
                .get_array("reasons")
                .map(|rs| {
                    rs.iter()
                        .filter_map(|r| r.as_document()?.get_str("code").ok())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            (from, e.get_str("to").unwrap_or_default().to_string(), codes)
        })
        .collect()
}

#[tokio::test]
async fn more_health_changes_than_status_history_max_keep_only_the_last_ones() {
    let id = "0123456789abcdef0123456789abcdef";
    let now = chrono::Utc::now().timestamp_millis();
    let fake = FlinkFake::with_jobs(BTreeMap::from([(
        id.to_string(),
        FakeJob::new("RUNNING", now - 3_600_000, -1),
    )]));
    let url = fake.serve().await;
    let s = Scenario::new(&url, &[("STATUS_HISTORY_MAX", "2")]).await;
    s.insert(
        doc! {"job_id": "flapping", "status": "CREATED", "flink_job_id": id,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let pod = s.k8s_job("flapping", JobState::Running).await;

    // The submitting pod restarts before every other look: the verdict
    // flips each run (a first HEALTHY, then DEGRADED, HEALTHY, ...).
    let mut verdicts = Vec::new();
    for (run, restart_count) in [0, 1, 1, 2, 2].into_iter().enumerate() {
        restarts(&s, &pod, restart_count).await;
        let summary = s.sync().await;
        assert_eq!(
            (summary.health_checked, summary.health_changes),
            (1, 1),
            "run {run}: {summary:?}"
        );
        let r = s.record("flapping").await;
        verdicts.push(r.get_str("health").unwrap_or_default().to_string());
    }
    assert_eq!(
        verdicts,
        ["HEALTHY", "DEGRADED", "HEALTHY", "DEGRADED", "HEALTHY"],
        "five changes of the verdict"
    );
    let r = s.record("flapping").await;
    let degraded = || vec!["submitter_restarting".to_string()];
    assert_eq!(
        health_history(&r),
        [
            (Some("HEALTHY".into()), "DEGRADED".into(), degraded()),
            (Some("DEGRADED".into()), "HEALTHY".into(), Vec::new()),
        ],
        "the last two of five changes, oldest first: {r}"
    );
    assert_eq!(
        r.get_array("status_history").map(Vec::len).ok(),
        Some(1),
        "one status change, within the bound: {r}"
    );
}

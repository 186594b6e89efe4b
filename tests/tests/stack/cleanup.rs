//! Cleanup against an in-process Kubernetes API emulator (which really
//! cascades pod deletion) and the stack's MongoDB.

use chrono::{Duration, Utc};
use flink_job_sync::adapters::k8s::Kubernetes;
use flink_job_sync::adapters::store::Store;
use flink_job_sync::rules::cleanup::{CleanupRules, KeepReason};
use flink_job_sync::runs::cleanup::{Cleaner, CleanupRequest};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use test_kit::emulator::{self, EmulatorConfig};
use test_kit::stack::{Stack, unique_name};

const NS: &str = "lemo-dev";

struct Bench {
    _emulator: emulator::RunningEmulator,
    jobs: Api<Job>,
    pods: Api<Pod>,
    records: mongodb::Collection<mongodb::bson::Document>,
    cleaner: Cleaner,
}

async fn bench() -> Bench {
    let stack = Stack::from_env();
    let emulator = emulator::start(EmulatorConfig::default())
        .await
        .unwrap_or_else(|e| panic!("emulator: {e}"));
    let client = emulator.client().await;
    let database = unique_name("fjs_cleanup");
    let records = stack.records(&database).await;
    let cfg = test_kit::scenario::config_for(&stack, &database, "http://127.0.0.1:1", &[]);
    Bench {
        jobs: Api::namespaced(client.clone(), NS),
        pods: Api::namespaced(client.clone(), NS),
        cleaner: Cleaner::new(
            Kubernetes::new(client, &cfg.kube),
            Store::connect(&cfg.mongo)
                .await
                .unwrap_or_else(|e| panic!("MongoDB: {e}")),
            CleanupRules::default(),
        ),
        records,
        _emulator: emulator,
    }
}

fn rfc3339(d: chrono::DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `Some(hours)`: finished that long ago (complete, or failed when `failed`).
async fn job(b: &Bench, name: &str, labelled: bool, finished_hours_ago: Option<i64>, failed: bool) {
    let labels = if labelled {
        json!({"app": "flink-python-job"})
    } else {
        json!({"app": "other"})
    };
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "flink"}]}}}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let job = b
        .jobs
        .create(&PostParams::default(), &job)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-p"), "labels": {"job-name": name, "app": "flink-python-job"},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "flink"}]}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    b.pods
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod: {e}"));
    let status: Value = match finished_hours_ago {
        None => json!({"active": 1}),
        Some(h) => {
            let t = rfc3339(Utc::now() - Duration::hours(h));
            if failed {
                json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastTransitionTime": t}]})
            } else {
                json!({"succeeded": 1, "completionTime": t, "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": t}]})
            }
        }
    };
    b.jobs
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap_or_else(|e| panic!("status {name}: {e}"));
}

async fn record(b: &Bench, job_id: &str, status: &str, flink_job_id: Option<&str>) {
    let d: Document = doc! {"job_id": job_id, "status": status, "flink_job_id": flink_job_id};
    b.records
        .insert_one(d)
        .await
        .unwrap_or_else(|e| panic!("insert: {e}"));
}

async fn names(b: &Bench) -> Vec<String> {
    test_kit::stack::job_names(&b.jobs).await
}

#[tokio::test]
async fn cleanup_deletes_old_finished_jobs_with_their_pods_and_keeps_evidence() {
    let b = bench().await;
    let id = "0123456789abcdef0123456789abcdef";
    job(&b, "old-done", true, Some(48), false).await;
    record(&b, "old-done", "FINISHED", Some(id)).await;
    job(&b, "old-failed-no-record", true, Some(30), true).await;
    job(&b, "recent-done", true, Some(2), false).await;
    job(&b, "still-running", true, None, false).await;
    job(&b, "old-awaiting-sync", true, Some(48), false).await;
    record(&b, "old-awaiting-sync", "CREATED", None).await;
    job(&b, "ancient-awaiting-sync", true, Some(24 * 8), true).await;
    record(&b, "ancient-awaiting-sync", "CREATED", None).await;
    job(&b, "not-ours", false, Some(48), false).await;

    let dry = b
        .cleaner
        .run(&CleanupRequest { dry_run: true })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dry.deleted.len(), 3, "{dry:?}");
    assert_eq!(names(&b).await.len(), 7, "a dry run deletes nothing");

    let s = b
        .cleaner
        .run(&CleanupRequest { dry_run: false })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut deleted = s.deleted.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        ["ancient-awaiting-sync", "old-done", "old-failed-no-record"]
    );
    assert_eq!(s.evidence_lost, ["ancient-awaiting-sync"]);
    assert_eq!(s.kept.get(&KeepReason::TooRecent), Some(&1));
    assert_eq!(s.kept.get(&KeepReason::NotFinished), Some(&1));
    assert_eq!(s.kept.get(&KeepReason::EvidenceNeeded), Some(&1));
    assert!(s.errors.is_empty(), "{s:?}");
    assert_eq!(
        names(&b).await,
        [
            "not-ours",
            "old-awaiting-sync",
            "recent-done",
            "still-running"
        ]
    );
    let pods: Vec<String> = b
        .pods
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(
        !pods.iter().any(|p| p.starts_with("old-done")),
        "pods go with their Job: {pods:?}"
    );
    assert!(pods.contains(&"recent-done-p".to_string()));

    let again = b
        .cleaner
        .run(&CleanupRequest { dry_run: false })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again.deleted.is_empty() && again.errors.is_empty(),
        "{again:?}"
    );
}

//! Cleanup against an in-process Kubernetes API emulator (which really
//! cascades pod deletion) and the stack's MongoDB: what it deletes and keeps,
//! a Job that cannot be deleted, one already gone, a suspended one, and the
//! Jobs of another namespace.

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
use test_kit::emulator::{self, EmulatorConfig, Intercept};
use test_kit::stack::{Stack, unique_name};

const NS: &str = "lemo-dev";

struct Bench {
    emulator: emulator::RunningEmulator,
    client: kube::Client,
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
    let client_for_tests = client.clone();
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
        client: client_for_tests,
        emulator,
    }
}

fn rfc3339(d: chrono::DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `Some(hours)`: finished that long ago (complete, or failed when `failed`).
async fn job(b: &Bench, name: &str, labelled: bool, finished_hours_ago: Option<i64>, failed: bool) {
    job_in(b, NS, name, labelled, finished_hours_ago, failed).await;
}

/// [`job`] in namespace `ns`.
async fn job_in(
    b: &Bench,
    ns: &str,
    name: &str,
    labelled: bool,
    finished_hours_ago: Option<i64>,
    failed: bool,
) {
    let jobs: Api<Job> = Api::namespaced(b.client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(b.client.clone(), ns);
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
    let job = jobs
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
    pods.create(&PostParams::default(), &pod)
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
    jobs.patch_status(
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

async fn run(b: &Bench) -> flink_job_sync::runs::cleanup::CleanupSummary {
    b.cleaner
        .run(&CleanupRequest { dry_run: false })
        .await
        .unwrap_or_else(|e| panic!("cleanup run: {e}"))
}

fn job_path(ns: &str, name: &str) -> String {
    format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}")
}

async fn pod_names(b: &Bench) -> Vec<String> {
    b.pods
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list pods: {e}"))
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect()
}

#[tokio::test]
async fn a_job_that_cannot_be_deleted_is_named_in_errors_and_the_run_deletes_the_others() {
    let b = bench().await;
    // Listed first: the run must go on past it.
    job(&b, "aa-undeletable", true, Some(48), false).await;
    job(&b, "bb-done", true, Some(48), false).await;
    job(&b, "cc-failed", true, Some(30), true).await;
    b.emulator.intercept(
        "DELETE",
        &job_path(NS, "aa-undeletable"),
        Intercept::Fail(500),
    );

    let s = run(&b).await;
    let mut deleted = s.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, ["bb-done", "cc-failed"], "{s:?}");
    assert_eq!(s.errors.len(), 1, "{s:?}");
    let error = &s.errors[0];
    assert!(
        error.starts_with("deleting Job aa-undeletable: HTTP 500 InternalError: "),
        "the error names the Job and the server's answer, as the README shows: {error}"
    );
    assert_eq!(names(&b).await, ["aa-undeletable"], "the Job stays");
    assert_eq!(
        pod_names(&b).await,
        ["aa-undeletable-p"],
        "and so do its pods"
    );

    // The next run tries again, and says so again.
    let again = run(&b).await;
    assert!(again.deleted.is_empty(), "{again:?}");
    assert_eq!(again.errors.len(), 1, "{again:?}");
}

#[tokio::test]
async fn a_job_already_gone_when_cleanup_deletes_it_counts_as_deleted() {
    let b = bench().await;
    job(&b, "gone-meanwhile", true, Some(48), false).await;
    job(&b, "old-done", true, Some(48), false).await;
    // Another client deletes it between cleanup's list and its delete.
    b.emulator.intercept(
        "DELETE",
        &job_path(NS, "gone-meanwhile"),
        Intercept::VanishFirst,
    );

    let s = run(&b).await;
    let mut deleted = s.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, ["gone-meanwhile", "old-done"], "{s:?}");
    assert!(s.errors.is_empty(), "a 404 is not an error: {s:?}");
    assert!(names(&b).await.is_empty());
}

#[tokio::test]
async fn a_suspended_job_is_kept_however_long_ago_it_was_suspended() {
    let b = bench().await;
    let id = "0123456789abcdef0123456789abcdef";
    let labels = json!({"app": "flink-python-job"});
    let suspended: Job = serde_json::from_value(json!({
        "metadata": {"name": "suspended", "labels": labels},
        "spec": {"suspend": true, "backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "flink"}]}}}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    b.jobs
        .create(&PostParams::default(), &suspended)
        .await
        .unwrap_or_else(|e| panic!("create suspended: {e}"));
    let long_ago = rfc3339(Utc::now() - Duration::days(30));
    let status = json!({"status": {"conditions": [{"type": "Suspended", "status": "True",
        "reason": "JobSuspended", "message": "Job suspended", "lastTransitionTime": long_ago}]}});
    b.jobs
        .patch_status("suspended", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap_or_else(|e| panic!("status suspended: {e}"));
    // Its record is final with its JobID: nothing but the Job's state keeps it.
    record(&b, "suspended", "FINISHED", Some(id)).await;
    job(&b, "old-done", true, Some(48), false).await;

    let s = run(&b).await;
    assert_eq!(s.deleted, ["old-done"], "{s:?}");
    assert_eq!(s.kept.get(&KeepReason::NotFinished), Some(&1), "{s:?}");
    assert_eq!(names(&b).await, ["suspended"]);
}

#[tokio::test]
async fn cleanup_lists_and_deletes_only_in_its_own_namespace() {
    let b = bench().await;
    let other = "team-b";
    job(&b, "shared-name", true, Some(48), false).await;
    job_in(&b, other, "shared-name", true, Some(48), false).await;
    job_in(&b, other, "only-in-b", true, Some(48), true).await;
    // The team-b Job's record still waits for its JobID: it keeps the team-b
    // Job (were that one cleaned), never its lemo-dev namesake.
    b.records
        .insert_one(doc! {"job_id": "shared-name", "k8s_namespace": other, "status": "CREATED"})
        .await
        .unwrap_or_else(|e| panic!("insert: {e}"));
    b.emulator.take_requests_by_path();

    let s = run(&b).await;
    let requests = b.emulator.take_requests_by_path();
    assert_eq!(
        requests.into_iter().collect::<Vec<_>>(),
        [
            (format!("DELETE {}", job_path(NS, "shared-name")), 1),
            (format!("GET /apis/batch/v1/namespaces/{NS}/jobs"), 1),
        ],
        "one list of its own namespace, one delete, nothing asked of {other}"
    );
    assert_eq!(s.namespace, NS);
    assert_eq!(s.jobs_seen, 1, "{s:?}");
    assert_eq!(s.deleted, ["shared-name"], "{s:?}");
    assert!(s.kept.is_empty() && s.errors.is_empty(), "{s:?}");
    assert!(names(&b).await.is_empty());
    let in_b: Api<Job> = Api::namespaced(b.client.clone(), other);
    assert_eq!(
        test_kit::stack::job_names(&in_b).await,
        ["only-in-b", "shared-name"],
        "another namespace's Jobs are never touched"
    );
}

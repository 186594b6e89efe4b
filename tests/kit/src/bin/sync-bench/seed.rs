//! The generated fleet, the same for every variant: the records in MongoDB,
//! the jobs each Flink stand-in serves, and in the Kubernetes API emulator a
//! Job with a running pod and a log for every record still waiting for its
//! JobID. Which records change follows from their index alone, so every
//! variant sees the same changes.

use std::collections::BTreeMap;
use std::time::Duration;

use flink_job_sync::adapters::store::record::to_bson_date;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use mongodb::bson::{Bson, Document, doc};
use serde_json::json;
use test_kit::emulator::RunningEmulator;
use test_kit::flinkfake::FakeJob;
use test_kit::scenario::NS;

/// When every generated job started (epoch ms).
const T0: i64 = 1_795_000_000_000;

/// Every generated job checkpoints this often (retained on cancellation).
pub const CHECKPOINT_INTERVAL_MS: u64 = 60_000;

/// The shape of a fleet, and the network between it and the variants.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    /// Share of records whose job has finished.
    pub changing: f64,
    /// Share of records still waiting for their JobID.
    pub pending: f64,
    /// Flink clusters the fleet is spread over (record `i` on cluster
    /// `i % clusters`); with one, records name none (`FLINK_REST_URL`).
    pub clusters: usize,
    /// Round trip added to every exchange with MongoDB, Flink and
    /// Kubernetes (half each way, by the fault proxies).
    pub rtt: Duration,
}

impl Knobs {
    /// Records `0..pending` wait for their JobID.
    fn pending_of(&self, n: usize) -> usize {
        (n as f64 * self.pending) as usize
    }

    /// Records `pending..pending + changing` have finished.
    fn changing_of(&self, n: usize) -> usize {
        (n as f64 * self.changing) as usize
    }
}

/// The cluster record `i` names, if the fleet has several.
fn cluster_of(i: usize, k: Knobs) -> Option<String> {
    (k.clusters > 1).then(|| format!("c{}", i % k.clusters))
}

/// Record `i`'s Flink JobID.
fn jid(i: usize) -> String {
    format!("{:032x}", i + 1)
}

/// Record `i`'s `job_id`, which is also its Kubernetes Job's name.
fn job_name(i: usize) -> String {
    format!("bench-{i:06}")
}

/// The pod of a waiting record's Job (the floor reads its log by this name,
/// without listing).
pub fn pod_name(job_id: &str) -> String {
    format!("{job_id}-pod0")
}

/// The generated records, written to a fresh database with the product's
/// indexes (every variant pays for the same ones).
pub async fn records(db: &mongodb::Database, n: usize, k: Knobs) {
    db.drop().await.unwrap_or_else(|e| panic!("drop: {e}"));
    let coll = db.collection::<Document>("flink_jobs");
    let pending = k.pending_of(n);
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        let mut d = if i < pending {
            doc! {"job_id": job_name(i), "status": "CREATED", "flink_job_id": null, "submitted_at": to_bson_date(chrono::Utc::now())}
        } else {
            doc! {"job_id": job_name(i), "status": "RUNNING", "flink_job_id": jid(i), "flink_state": "RUNNING",
            "start_time": Bson::DateTime(mongodb::bson::DateTime::from_millis(T0)), "submitted_at": to_bson_date(chrono::Utc::now())}
        };
        if let Some(c) = cluster_of(i, k) {
            d.insert("flink_cluster", c);
        }
        batch.push(d);
        if batch.len() == 1000 {
            coll.insert_many(std::mem::take(&mut batch))
                .await
                .unwrap_or_else(|e| panic!("seed: {e}"));
        }
    }
    if !batch.is_empty() {
        coll.insert_many(batch)
            .await
            .unwrap_or_else(|e| panic!("seed: {e}"));
    }
    crate::product::ensure_indexes(db).await;
}

/// Flink states, per cluster: pending records' jobs RUNNING (a change once
/// found), the changing share FINISHED, the rest RUNNING as recorded; every
/// job checkpointing, so a health look reads checkpoints, config and restarts.
pub fn flink_jobs(n: usize, k: Knobs) -> Vec<BTreeMap<String, FakeJob>> {
    let pending = k.pending_of(n);
    let changing = k.changing_of(n);
    let mut clusters = vec![BTreeMap::new(); k.clusters.max(1)];
    for i in 0..n {
        let finished = i >= pending && i < pending + changing;
        let job = if finished {
            FakeJob::new("FINISHED", T0, T0 + 60_000)
        } else {
            FakeJob::new("RUNNING", T0, -1)
        };
        clusters[i % k.clusters.max(1)].insert(jid(i), job.checkpointing(CHECKPOINT_INTERVAL_MS));
    }
    clusters
}

/// Every running record with a JobID as a health look leaves it, some time
/// ago: healthy, checkpoint config known. What the records look like once
/// every running job has had a look (after fleet / budget runs).
pub async fn mark_all_looked_at(db: &mongodb::Database) {
    let ago = to_bson_date(chrono::Utc::now() - chrono::Duration::minutes(10));
    db.collection::<Document>("flink_jobs")
        .update_many(
            doc! {"status": "RUNNING", "flink_job_id": {"$ne": null}},
            doc! {"$set": {"health": "HEALTHY", "health_reasons": [], "health_checked_at": ago,
            "restarts": 0_i64, "checkpoint": {"completed": 0_i64, "failed": 0_i64,
            "interval_ms": CHECKPOINT_INTERVAL_MS as i64,
            "retention": flink_job_sync::rules::health::Retention::OnCancellation.as_str()}}},
        )
        .await
        .unwrap_or_else(|e| panic!("marking records looked at: {e}"));
}

/// The waiting records' Jobs, each with a running pod whose log announces
/// the JobID.
pub async fn k8s_fleet(emu: &RunningEmulator, n: usize, k: Knobs) {
    let pending = k.pending_of(n);
    let client = emu.client().await;
    let url = emu.url();
    futures::stream::iter((0..pending).map(|i| {
        let client = client.clone();
        let url = url.clone();
        async move { create_pending(&client, &url, i).await }
    }))
    .buffer_unordered(8)
    .collect::<Vec<_>>()
    .await;
}

async fn create_pending(client: &kube::Client, url: &str, i: usize) {
    let name = job_name(i);
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let job: Job = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "flink-python-job"}},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": "flink-python-job"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "flink-client", "image": "flink"}]}}}}))
    .unwrap_or_else(|e| panic!("{e}"));
    let job = jobs
        .create(&Default::default(), &job)
        .await
        .unwrap_or_else(|e| panic!("create job: {e}"));
    let uid = job.metadata.uid.unwrap_or_default();
    let pod_name = pod_name(&name);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": pod_name, "labels": {"app": "flink-python-job", "job-name": name},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true}]},
        "spec": {"containers": [{"name": "flink-client", "image": "flink"}]}}))
    .unwrap_or_else(|e| panic!("{e}"));
    pods.create(&Default::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod: {e}"));
    let running = json!({"status": {"phase": "Running", "containerStatuses": [{"name": "flink-client", "image": "flink", "imageID": "",
        "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
    pods.patch_status(
        &pod_name,
        &Default::default(),
        &kube::api::Patch::Merge(running),
    )
    .await
    .unwrap_or_else(|e| panic!("pod status: {e}"));
    let log = format!("starting\nJob has been submitted with JobID {}\n", jid(i));
    reqwest::Client::new()
        .put(format!(
            "{url}/emulator/v1/namespaces/{NS}/pods/{pod_name}/log?container=flink-client"
        ))
        .body(log)
        .send()
        .await
        .unwrap_or_else(|e| panic!("log: {e}"));
}

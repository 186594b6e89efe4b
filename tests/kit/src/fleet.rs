//! A small fleet of real Flink Python jobs, submitted the way the data
//! platform submits them: a record in `flink_jobs` (CREATED, no JobID), then a
//! Kubernetes Job whose pod runs `flink run -py`. Shared by the end-to-end
//! tests and the demo.

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};
use mongodb::bson::{Document, doc};
use serde_json::json;

use flink_job_sync::adapters::store::record::to_bson_date;

/// One submission: the record's `job_id` is the Kubernetes Job's name.
#[derive(Debug, Clone)]
pub struct Submission {
    pub job_id: String,
    /// A script in `tests/jobs/`.
    pub script: String,
    /// `flink run -d` (the client returns once submitted) or not (the client,
    /// and so the pod, waits for the job).
    pub detached: bool,
}

/// The Kubernetes Job for a submission, as the platform creates it.
pub fn flink_submit_job(name: &str, jobmanager: &str, script: &str, detached: bool) -> Job {
    let mut args = vec!["run".to_string(), "-m".to_string(), jobmanager.to_string()];
    if detached {
        args.push("-d".to_string());
    }
    args.extend(["-py".to_string(), format!("/opt/jobs/{script}")]);
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "flink-python-job"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": "flink-python-job"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "flink-client",
                        "image": "flink:2.3.0-python",
                        "command": ["/opt/flink/bin/flink"],
                        "args": args,
                    }]
                }
            }
        }
    }))
    .unwrap_or_else(|e| panic!("job manifest: {e}"))
}

/// Writes the record, then creates the Kubernetes Job, in namespace `ns`.
pub async fn submit(
    kube: &kube::Client,
    records: &mongodb::Collection<Document>,
    ns: &str,
    jobmanager: &str,
    s: &Submission,
) {
    records
        .insert_one(doc! {
            "job_id": &s.job_id, "status": "CREATED", "flink_job_id": null,
            "submitted_at": to_bson_date(chrono::Utc::now()), "k8s_namespace": ns, "script": &s.script,
        })
        .await
        .unwrap_or_else(|e| panic!("insert record {}: {e}", s.job_id));
    let jobs: Api<Job> = Api::namespaced(kube.clone(), ns);
    jobs.create(
        &PostParams::default(),
        &flink_submit_job(&s.job_id, jobmanager, &s.script, s.detached),
    )
    .await
    .unwrap_or_else(|e| panic!("create Kubernetes Job {}: {e}", s.job_id));
}

/// A DNS-safe name unique to this process and moment.
pub fn k8s_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{:x}", (nanos / 1000) & 0xff_ffff_ffff)
}

/// `PATCH /jobs/{id}?mode=cancel` on the Flink REST API.
pub async fn cancel_flink_job(flink_rest_url: &str, id: &str) {
    let id = flink_job_sync::rules::model::FlinkJobId::parse(id)
        .unwrap_or_else(|| panic!("not a JobID: {id:?}"));
    let resp = reqwest::Client::new()
        .patch(format!("{flink_rest_url}/jobs/{id}?mode=cancel"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("cancel {id}: {e}"));
    assert!(
        resp.status().is_success(),
        "cancel {id}: HTTP {}",
        resp.status()
    );
}

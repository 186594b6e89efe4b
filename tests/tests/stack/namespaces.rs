//! Records in two namespaces (`k8s_namespace` on the record, `K8S_NAMESPACE`
//! for the others): each reaches its truth from its own namespace's Jobs,
//! and a run lists the Jobs and the pods of each namespace once, however
//! many chunks and health looks need them.

use std::collections::BTreeMap;

use flink_job_sync::adapters::store::record::to_bson_date;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use mongodb::bson::{Bson, Document, doc};
use serde_json::{Value, json};
use test_kit::flinkfake::{FakeJob, FlinkFake};
use test_kit::scenario::{NS, Scenario};

const OTHER: &str = "team-b";

#[derive(Clone, Copy)]
enum Phase {
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    /// The pod's status and the Job's, as the controller and kubelet leave them.
    fn statuses(self) -> (Value, Value) {
        let t = "2026-01-01T00:00:00Z";
        let container = |state: Value| {
            json!([{"name": "flink-client", "image": "flink:2.3.0", "imageID": "", "ready": false,
                "restartCount": 0, "state": state}])
        };
        match self {
            Phase::Running => (
                json!({"phase": "Running", "containerStatuses": container(json!({"running": {"startedAt": t}}))}),
                json!({"active": 1, "startTime": t}),
            ),
            Phase::Succeeded => (
                json!({"phase": "Succeeded", "containerStatuses": container(json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}}))}),
                json!({"succeeded": 1, "startTime": t, "completionTime": t, "conditions": [
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": t}]}),
            ),
            Phase::Failed => (
                json!({"phase": "Failed", "containerStatuses": container(json!({"terminated": {"exitCode": 2, "reason": "Error", "startedAt": t, "finishedAt": t}}))}),
                json!({"failed": 1, "startTime": t, "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit", "lastTransitionTime": t}]}),
            ),
        }
    }
}

/// The Job the platform would have created for `name` in `ns`, with one
/// pod in `phase` whose log is `log`.
async fn job_in(s: &Scenario, ns: &str, name: &str, phase: Phase, log: &str) {
    let jobs: Api<Job> = Api::namespaced(s.kube.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(s.kube.clone(), ns);
    let labels = json!({"app": "flink-python-job"});
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "flink-client", "image": "flink:2.3.0"}]}}}
    }))
    .unwrap_or_else(|e| panic!("job manifest: {e}"));
    let job = jobs
        .create(&PostParams::default(), &job)
        .await
        .unwrap_or_else(|e| panic!("create job {ns}/{name}: {e}"));
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let pod_name = format!("{name}-pod0");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": pod_name, "labels": {"app": "flink-python-job", "job-name": name},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true}]},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "flink-client", "image": "flink:2.3.0"}]}
    }))
    .unwrap_or_else(|e| panic!("pod manifest: {e}"));
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("create pod {ns}/{pod_name}: {e}"));
    let (pod_status, job_status) = phase.statuses();
    let merge = |status: Value| Patch::Merge(json!({ "status": status }));
    pods.patch_status(&pod_name, &PatchParams::default(), &merge(pod_status))
        .await
        .unwrap_or_else(|e| panic!("pod status: {e}"));
    jobs.patch_status(name, &PatchParams::default(), &merge(job_status))
        .await
        .unwrap_or_else(|e| panic!("job status: {e}"));
    let url = format!(
        "{}/emulator/v1/namespaces/{ns}/pods/{pod_name}/log?container=flink-client",
        s.emulator.url()
    );
    let resp = reqwest::Client::new()
        .put(url)
        .body(log.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("set log: {e}"));
    assert!(resp.status().is_success(), "set log: {}", resp.status());
}

fn record(
    job_id: &str,
    ns: Option<&str>,
    flink_job_id: Option<&str>,
    minutes_ago: i64,
) -> Document {
    let submitted = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let mut d = doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": flink_job_id,
    "submitted_at": to_bson_date(submitted)};
    if let Some(ns) = ns {
        d.insert("k8s_namespace", ns);
    }
    d
}

fn submitted(id: &str) -> String {
    format!("INFO starting\nJob has been submitted with JobID {id}\n")
}

/// The Job and pod lists a run asked for, by path (log reads left out).
fn lists(counts: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    counts
        .into_iter()
        .filter(|(k, _)| k.starts_with("GET ") && (k.ends_with("/jobs") || k.ends_with("/pods")))
        .collect()
}

fn one_list_each(namespaces: &[&str]) -> BTreeMap<String, u64> {
    namespaces
        .iter()
        .flat_map(|ns| {
            [
                (format!("GET /api/v1/namespaces/{ns}/pods"), 1),
                (format!("GET /apis/batch/v1/namespaces/{ns}/jobs"), 1),
            ]
        })
        .collect()
}

fn text<'a>(r: &'a Document, field: &str) -> Option<&'a str> {
    r.get_str(field).ok()
}

#[tokio::test]
async fn records_in_two_namespaces_reach_their_truth_with_one_job_and_pod_list_per_namespace() {
    let [running, finished, followed] = [1u8, 2, 3].map(|n| format!("{n:032x}"));
    let now = chrono::Utc::now().timestamp_millis();
    let fake = FlinkFake::with_jobs(BTreeMap::from([
        (running.clone(), FakeJob::new("RUNNING", now - 600_000, -1)),
        (
            finished.clone(),
            FakeJob::new("FINISHED", now - 600_000, now - 60_000),
        ),
        (followed.clone(), FakeJob::new("RUNNING", now - 600_000, -1)),
    ]));
    let url = fake.serve().await;
    // One record a chunk: the lists of the first chunks serve the later ones.
    let s = Scenario::new(&url, &[("SYNC_CHUNK_SIZE", "1")]).await;
    s.insert(record("dev-running", None, None, 1)).await;
    s.insert(record("b-finished", Some(OTHER), None, 1)).await;
    s.insert(record("b-failed", Some(OTHER), None, 1)).await;
    s.insert(record("b-no-job", Some(OTHER), None, 30)).await;
    s.insert(record("b-followed", Some(OTHER), Some(&followed), 1))
        .await;
    job_in(&s, NS, "dev-running", Phase::Running, &submitted(&running)).await;
    job_in(
        &s,
        OTHER,
        "b-finished",
        Phase::Succeeded,
        &submitted(&finished),
    )
    .await;
    job_in(
        &s,
        OTHER,
        "b-failed",
        Phase::Failed,
        "ValueError: no such table\n",
    )
    .await;
    job_in(
        &s,
        OTHER,
        "b-followed",
        Phase::Running,
        &submitted(&followed),
    )
    .await;
    // A namesake in the default namespace is not b-no-job's Job.
    job_in(&s, NS, "b-no-job", Phase::Running, &submitted(&running)).await;
    s.emulator.take_requests_by_path();

    let summary = s.sync().await;
    let requests = s.emulator.take_requests_by_path();
    assert!(summary.errors.is_empty(), "{summary:?}");
    let r = s.record("dev-running").await;
    assert_eq!(
        (text(&r, "status"), text(&r, "flink_job_id")),
        (Some("RUNNING"), Some(running.as_str())),
        "{r}"
    );
    let r = s.record("b-finished").await;
    assert_eq!(
        (text(&r, "status"), text(&r, "flink_job_id")),
        (Some("FINISHED"), Some(finished.as_str())),
        "{r}"
    );
    let r = s.record("b-failed").await;
    let reason = text(&r, "status_reason").unwrap_or_default();
    assert_eq!(text(&r, "status"), Some("FAILED"), "{r}");
    assert!(
        reason.contains("BackoffLimitExceeded") && reason.contains("no such table"),
        "{reason}"
    );
    let r = s.record("b-no-job").await;
    assert_eq!(text(&r, "status"), Some("FAILED"), "{r}");
    assert!(
        text(&r, "status_reason").is_some_and(|t| t.starts_with("Kubernetes Job not found")),
        "{r}"
    );
    assert_eq!(r.get("flink_job_id"), Some(&Bson::Null), "{r}");
    let r = s.record("b-followed").await;
    assert_eq!(text(&r, "status"), Some("RUNNING"), "{r}");
    // b-followed (running) and b-finished (just ended) were looked at, each
    // with its submitting pod from the team-b lists.
    assert_eq!(summary.health_checked, 2, "{summary:?}");
    assert_eq!(r.get_i64("submitter_restarts").ok(), Some(0), "{r}");

    assert_eq!(
        lists(requests),
        one_list_each(&[NS, OTHER]),
        "one Job list and one pod list per namespace, for five chunks and their health looks"
    );
    // The next run looks at the two running jobs' health: each namespace
    // is listed once again, for their submitting pods.
    let again = s.sync().await;
    assert_eq!(again.health_checked, 2, "{again:?}");
    assert_eq!(
        lists(s.emulator.take_requests_by_path()),
        one_list_each(&[NS, OTHER])
    );
}

#[tokio::test]
async fn an_unavailable_kubernetes_api_is_asked_once_a_run_not_retried_for_minutes() {
    // kube-rs retries 429, 503 and 504 by default, up to 15 times with a
    // backoff of up to 1000 s: a throttled API would hold a run past its
    // deadline. The product asks once; the next run asks again.
    let flink = FlinkFake::with_jobs(BTreeMap::new());
    let mut s = Scenario::new(&flink.serve().await, &[]).await;
    // The product's own client, as the functions build it: from a kubeconfig.
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: e\nclusters:\n- name: e\n  cluster:\n    server: {}\ncontexts:\n- name: e\n  context:\n    cluster: e\n    user: u\n    namespace: {NS}\nusers:\n- name: u\n  user: {{}}\n",
        s.emulator.url()
    );
    let settings = flink_job_sync::config::KubeSettings {
        kubeconfig: Some(flink_job_sync::config::Secret::new(kubeconfig)),
        ..s.cfg.kube.clone()
    };
    let kube = flink_job_sync::adapters::k8s::Kubernetes::connect(&settings)
        .await
        .unwrap_or_else(|e| panic!("the product's Kubernetes client: {e}"));
    s.syncer.set_kubernetes(kube);
    s.insert(record("waiting-1", None, None, 1)).await;
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs");
    s.emulator
        .intercept("GET", &path, test_kit::emulator::Intercept::Fail(503));
    s.emulator.take_requests_by_path();
    let summary = s.sync().await;
    let requests = s.emulator.take_requests_by_path();
    assert_eq!(
        requests.get(&format!("GET {path}")),
        Some(&1),
        "one request, no retries: {requests:?}"
    );
    assert!(
        summary
            .errors
            .iter()
            .any(|e| e.job_id == "waiting-1" && e.error.starts_with("kubernetes: ")),
        "{summary:?}"
    );
}

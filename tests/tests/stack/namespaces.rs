//! Records in two namespaces (`k8s_namespace` on the record, `K8S_NAMESPACE`
//! for the others): each reaches its truth from its own namespace's Jobs,
//! and a run lists the Jobs and the pods of each namespace once, however
//! many chunks and health looks need them.

use std::collections::BTreeMap;

use flink_job_sync::adapters::store::record::to_bson_date;
use mongodb::bson::{Bson, Document, doc};
use test_kit::flinkfake::{FakeJob, FlinkFake};
use test_kit::scenario::{JobState, NS, Scenario};

const OTHER: &str = "team-b";

/// The Job the platform would have created for `name` in `ns`, with one
/// pod in `state` whose log is `log`.
async fn job_in(s: &Scenario, ns: &str, name: &str, state: JobState, log: &str) {
    let pod = s.k8s_job_in(ns, name, state).await;
    s.set_log_in(ns, &pod, log.to_string()).await;
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
    job_in(
        &s,
        NS,
        "dev-running",
        JobState::Running,
        &submitted(&running),
    )
    .await;
    job_in(
        &s,
        OTHER,
        "b-finished",
        JobState::Succeeded,
        &submitted(&finished),
    )
    .await;
    job_in(
        &s,
        OTHER,
        "b-failed",
        JobState::Failed(2),
        "ValueError: no such table\n",
    )
    .await;
    job_in(
        &s,
        OTHER,
        "b-followed",
        JobState::Running,
        &submitted(&followed),
    )
    .await;
    // A namesake in the default namespace is not b-no-job's Job.
    job_in(&s, NS, "b-no-job", JobState::Running, &submitted(&running)).await;
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

//! The in-process test hooks: requests counted by path, marked requests
//! answered with a failure, and a marked object deleted just before its
//! request, as another client would.

use k8s_emulator::{EmulatorConfig, Intercept, start};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const NS: &str = "lemo-dev";

fn job(name: &str) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "a"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "flink:1.20"}]}}}
    }))
    .expect("valid job")
}

fn pod_of(job: &Job) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-p"), "labels": {"job-name": name},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "flink:1.20"}]}
    }))
    .expect("valid pod")
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn requests_are_counted_by_method_and_path_without_their_query() {
    let emu = start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    let client = emu.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let other: Api<Job> = Api::namespaced(client.clone(), "team-b");
    let pods: Api<Pod> = Api::namespaced(client, NS);
    emu.take_requests_by_path();
    for _ in 0..2 {
        jobs.list(&ListParams::default().labels("app=a"))
            .await
            .expect("list");
    }
    other.list(&ListParams::default()).await.expect("list");
    pods.list(&ListParams::default()).await.expect("list");
    let counts = emu.take_requests_by_path();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [
            ("GET /api/v1/namespaces/lemo-dev/pods".to_string(), 1),
            ("GET /apis/batch/v1/namespaces/lemo-dev/jobs".to_string(), 2),
            ("GET /apis/batch/v1/namespaces/team-b/jobs".to_string(), 1),
        ]
    );
    assert!(emu.take_requests_by_path().is_empty(), "taking resets");
}

#[tokio::test]
async fn a_marked_request_fails_every_time_and_changes_nothing() {
    let emu = start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    let jobs: Api<Job> = Api::namespaced(emu.client().await, NS);
    for name in ["kept", "free"] {
        jobs.create(&PostParams::default(), &job(name))
            .await
            .expect("create");
    }
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs/kept");
    emu.intercept("DELETE", &path, Intercept::Fail(500));
    for _ in 0..2 {
        let e = jobs
            .delete("kept", &DeleteParams::background())
            .await
            .expect_err("the marked delete fails");
        assert_eq!(api_error(e), (500, "InternalError".to_string()));
    }
    assert!(
        jobs.get("kept").await.is_ok(),
        "a failed delete deletes nothing"
    );
    assert!(
        jobs.get("kept").await.is_ok(),
        "a GET of the same path is not marked"
    );
    jobs.delete("free", &DeleteParams::background())
        .await
        .expect("an unmarked delete goes through");
    // Not 503: kube-rs retries 429, 503 and 504 (15 times, backing off).
    emu.intercept("DELETE", &path, Intercept::Fail(403));
    let e = jobs
        .delete("kept", &DeleteParams::background())
        .await
        .expect_err("the new mark replaces the old");
    assert_eq!(api_error(e), (403, "Forbidden".to_string()));
}

#[tokio::test]
async fn a_vanishing_job_is_deleted_with_its_pods_just_before_its_first_request() {
    let emu = start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    let client = emu.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let j = jobs
        .create(&PostParams::default(), &job("gone"))
        .await
        .expect("create");
    pods.create(&PostParams::default(), &pod_of(&j))
        .await
        .expect("pod");
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs/gone");
    emu.intercept("DELETE", &path, Intercept::VanishFirst);
    assert!(jobs.get("gone").await.is_ok(), "only DELETE is marked");
    let e = jobs
        .delete("gone", &DeleteParams::background())
        .await
        .expect_err("already gone");
    assert_eq!(api_error(e), (404, "NotFound".to_string()));
    assert!(
        pods.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty(),
        "its pods went with it"
    );
    jobs.create(&PostParams::default(), &job("gone"))
        .await
        .expect("create again");
    jobs.delete("gone", &DeleteParams::background())
        .await
        .expect("the mark was spent by its first request");
}

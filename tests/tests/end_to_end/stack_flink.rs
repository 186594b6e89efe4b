//! Proof that the local stack is real: Python Flink jobs submitted as
//! Kubernetes Jobs through the emulator in runner mode, with `flink run`
//! talking to the real Flink 2.3.0 session cluster.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams, PostParams};
use test_kit::fleet::{flink_submit_job, k8s_name};
use test_kit::stack::{Stack, eventually};

const NS: &str = "lemo-dev";

fn condition(job: &Job, kind: &str) -> Option<(String, Option<String>)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| (c.type_.clone(), c.reason.clone()))
}

async fn wait_finished(jobs: &Api<Job>, name: &str) -> Job {
    eventually(
        &format!("Job {name} finishes"),
        Duration::from_secs(120),
        || async {
            let job = jobs.get(name).await.map_err(|e| e.to_string())?;
            if condition(&job, "Complete").is_some() || condition(&job, "Failed").is_some() {
                Ok(job)
            } else {
                Err(format!("status {:?}", job.status))
            }
        },
    )
    .await
}

async fn pod_log(pods: &Api<Pod>, job_name: &str) -> String {
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={job_name}")))
        .await
        .expect("list pods of the job");
    let pod = list.items.last().expect("the Job has a pod");
    let name = pod.metadata.name.clone().expect("pod name");
    let params = LogParams {
        tail_lines: Some(500),
        limit_bytes: Some(256 * 1024),
        ..Default::default()
    };
    pods.logs(&name, &params).await.expect("read pod log")
}

fn job_ids(log: &str) -> Vec<String> {
    let re = regex::Regex::new(r"Job has been submitted with JobID ([0-9a-f]{32})").expect("regex");
    re.captures_iter(log).map(|c| c[1].to_string()).collect()
}

#[tokio::test]
async fn python_job_submitted_through_kubernetes_reaches_finished_on_flink() {
    let stack = Stack::from_env();
    let client = stack.kube_client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let name = k8s_name("bounded");
    jobs.create(
        &PostParams::default(),
        &flink_submit_job(&name, &stack.flink_jobmanager(), "bounded.py", true),
    )
    .await
    .expect("create the Kubernetes Job");

    let job = wait_finished(&jobs, &name).await;
    assert!(
        condition(&job, "Complete").is_some(),
        "Job should complete: {:?}",
        job.status
    );

    let log = pod_log(&pods, &name).await;
    let ids = job_ids(&log);
    assert_eq!(
        ids.len(),
        1,
        "exactly one JobID line in the pod log:\n{log}"
    );

    let state = test_kit::scenario::wait_for_flink_state(&stack, &ids[0], "FINISHED").await;
    assert_eq!(state["name"], "fjs-bounded");
    assert!(
        state["end-time"].as_i64().unwrap_or(-1)
            >= state["start-time"].as_i64().unwrap_or(i64::MAX)
    );
}

#[tokio::test]
async fn script_failing_before_submission_fails_the_kubernetes_job() {
    let stack = Stack::from_env();
    let client = stack.kube_client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let name = k8s_name("broken");
    jobs.create(
        &PostParams::default(),
        &flink_submit_job(
            &name,
            &stack.flink_jobmanager(),
            "fails_before_submit.py",
            true,
        ),
    )
    .await
    .expect("create the Kubernetes Job");

    let job = wait_finished(&jobs, &name).await;
    assert_eq!(
        condition(&job, "Failed"),
        Some((
            "Failed".to_string(),
            Some("BackoffLimitExceeded".to_string())
        )),
        "status: {:?}",
        job.status
    );
    let log = pod_log(&pods, &name).await;
    assert!(
        log.contains("configuration table 'dim_users' does not exist"),
        "log:\n{log}"
    );
    assert!(job_ids(&log).is_empty(), "no JobID may appear:\n{log}");
}

//! The Kubernetes API emulator, driven by the real kubectl (1.32).

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_emulator::{EmulatorConfig, RunningEmulator, kubeconfig_yaml, start};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const NS: &str = "lemo-dev";
const KUBECTL: &str = "/usr/bin/kubectl";

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn kubectl_path() -> PathBuf {
    let path = PathBuf::from(KUBECTL);
    assert!(
        path.exists(),
        "kubectl is required for this test but {KUBECTL} does not exist: install it with `apt-get install -y kubernetes-client`"
    );
    path
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(kubectl_path());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 20s"))
        .expect("kubectl runs");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn job(name: &str) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": "flink-python-job"}},
        "spec": {"template": {
            "metadata": {"labels": {"app": "flink-python-job"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "flink-main-container", "image": "flink:1.20"}]},
        }},
    }))
    .expect("valid job")
}

fn pod(job: &Job, name: &str) -> Pod {
    let uid = job.uid().unwrap_or_default();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": job.name_any(),
                       "controller-uid": uid, "job-name": job.name_any()},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job.name_any(), "uid": uid,
                                 "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "flink-main-container", "image": "flink:1.20"}]},
    }))
    .expect("valid pod")
}

struct Setup {
    emu: RunningEmulator,
    jobs: Api<Job>,
    pods: Api<Pod>,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    kubectl_path();
    let emu = start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(&emu.url(), NS)).expect("kubeconfig written");
    let client = emu.client().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let j = jobs
        .create(&PostParams::default(), &job("wordcount"))
        .await
        .expect("job");
    jobs.create(&PostParams::default(), &job("other"))
        .await
        .expect("job");
    pods.create(&PostParams::default(), &pod(&j, "wordcount-x7k2p"))
        .await
        .expect("pod");
    let running = json!({"status": {"phase": "Running", "containerStatuses": [{
        "name": "flink-main-container", "ready": true, "restartCount": 0, "image": "flink:1.20", "imageID": "",
        "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}]}});
    pods.patch_status(
        "wordcount-x7k2p",
        &PatchParams::default(),
        &Patch::Merge(&running),
    )
    .await
    .expect("running");
    let res = reqwest::Client::new()
        .put(format!("{}/emulator/v1/namespaces/{NS}/pods/wordcount-x7k2p/log", emu.url()))
        .body("Job has been submitted with JobID 0123456789abcdef0123456789abcdef\nProgram execution finished\n")
        .send()
        .await
        .expect("log hook");
    assert_eq!(res.status(), 200);
    Setup {
        emu,
        jobs,
        pods,
        kubeconfig,
        _dir: dir,
    }
}

#[tokio::test]
async fn kubectl_gets_jobs_by_label_and_pods_as_tables() {
    let s = setup().await;
    let out = kubectl(
        &s.kubeconfig,
        &["get", "jobs", "-n", NS, "-l", "app=flink-python-job"],
    )
    .await;
    assert!(out.ok, "kubectl get jobs failed: {}", out.stderr);
    let header = out.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("STATUS") && header.contains("COMPLETIONS"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("wordcount") && out.stdout.contains("other"),
        "{}",
        out.stdout
    );

    let out = kubectl(&s.kubeconfig, &["get", "pods", "-n", NS]).await;
    assert!(out.ok, "kubectl get pods failed: {}", out.stderr);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("wordcount-x7k2p"))
        .unwrap_or_default();
    assert!(
        row.contains("1/1") && row.contains("Running"),
        "{}",
        out.stdout
    );

    let out = kubectl(&s.kubeconfig, &["get", "jobs", "-o", "json"]).await;
    assert!(out.ok, "kubectl get -o json failed: {}", out.stderr);
    let list: Value = serde_json::from_str(&out.stdout).expect("kubectl prints JSON");
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|j| j["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["other", "wordcount"]);
    assert_eq!(list["items"][0]["kind"], "Job");
    s.emu.shutdown().await;
}

#[tokio::test]
async fn kubectl_prints_pod_logs_and_reports_missing_jobs() {
    let s = setup().await;
    let out = kubectl(&s.kubeconfig, &["logs", "wordcount-x7k2p", "-n", NS]).await;
    assert!(out.ok, "kubectl logs failed: {}", out.stderr);
    assert_eq!(
        out.stdout,
        "Job has been submitted with JobID 0123456789abcdef0123456789abcdef\nProgram execution finished\n"
    );
    let out = kubectl(
        &s.kubeconfig,
        &["logs", "wordcount-x7k2p", "-n", NS, "--tail", "1"],
    )
    .await;
    assert_eq!(out.stdout, "Program execution finished\n");

    let out = kubectl(&s.kubeconfig, &["get", "job", "missing", "-n", NS]).await;
    assert!(!out.ok, "getting a missing job must fail");
    assert!(
        out.stderr.contains("NotFound") && out.stderr.contains("jobs.batch \"missing\" not found"),
        "{}",
        out.stderr
    );
    s.emu.shutdown().await;
}

#[tokio::test]
async fn kubectl_deletes_a_job_and_its_pods_in_the_background() {
    let s = setup().await;
    // `kubectl delete` waits until the Job is really gone; were it kept (a
    // finalizer never removed), the command's timeout would fail the test.
    let out = kubectl(&s.kubeconfig, &["delete", "job", "wordcount", "-n", NS]).await;
    assert!(out.ok, "kubectl delete failed: {}", out.stderr);
    assert!(
        out.stdout.contains("job.batch \"wordcount\" deleted"),
        "{}",
        out.stdout
    );
    let left = s
        .pods
        .list(&ListParams::default().labels("job-name=wordcount"))
        .await
        .expect("list");
    assert!(left.items.is_empty(), "pods of the deleted job are gone");
    assert!(s.jobs.get_opt("wordcount").await.expect("get").is_none());
    let out = kubectl(&s.kubeconfig, &["get", "pods", "-n", NS]).await;
    assert!(
        out.stderr.contains("No resources found"),
        "{} / {}",
        out.stdout,
        out.stderr
    );

    // kubectl create -f goes through server-side field validation.
    let manifest = s._dir.path().join("job.json");
    std::fs::write(
        &manifest,
        serde_json::to_vec(&job("from-file")).expect("json"),
    )
    .expect("manifest");
    let out = kubectl(
        &s.kubeconfig,
        &["create", "-f", manifest.to_str().unwrap_or_default()],
    )
    .await;
    assert!(out.ok, "kubectl create failed: {}", out.stderr);
    assert!(s.jobs.get_opt("from-file").await.expect("get").is_some());
    s.emu.shutdown().await;
}

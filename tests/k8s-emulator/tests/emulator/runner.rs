//! Runner mode: the emulator acts as Job controller and kubelet, running a
//! Job's container command as a local process (shell commands here, no Flink).

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_emulator::{EmulatorConfig, RunnerConfig, RunningEmulator, start};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use serde_json::json;

const NS: &str = "lemo-dev";

async fn runner(
    path_map: Vec<(String, String)>,
    extra_env: Vec<(String, String)>,
) -> (RunningEmulator, Api<Job>, Api<Pod>) {
    let emu = start(EmulatorConfig {
        runner: Some(RunnerConfig {
            path_map,
            retry_delay: Duration::from_millis(100),
            extra_env,
        }),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator starts");
    let client = emu.client().await;
    (
        emu,
        Api::namespaced(client.clone(), NS),
        Api::namespaced(client, NS),
    )
}

fn job(name: &str, command: &[&str], backoff: i32) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "main",
                    "image": "busybox",
                    "command": command,
                    "env": [{"name": "GREETING", "value": "hello from env"}],
                }],
            }},
        },
    }))
    .expect("valid job")
}

/// Polls `f` until it yields a value, failing after `secs` seconds.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn job_pods(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .expect("list pods")
        .items
}

fn phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn terminated(p: &Pod) -> Option<k8s_openapi::api::core::v1::ContainerStateTerminated> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .terminated
        .clone()
}

fn conditions(j: &Job) -> Vec<(String, String, String)> {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.status, c.reason.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn a_succeeding_job_streams_its_log_while_running_then_completes() {
    let (emu, jobs, pods) = runner(Vec::new(), Vec::new()).await;
    jobs.create(
        &PostParams::default(),
        &job(
            "ok",
            &[
                "/bin/sh",
                "-c",
                "echo start; echo \"$GREETING\"; sleep 2; echo done",
            ],
            6,
        ),
    )
    .await
    .expect("job");

    let pod = eventually("a Running pod whose log shows start", 10, || async {
        let p = job_pods(&pods, "ok").await.into_iter().next()?;
        if phase(&p) != "Running" {
            return None;
        }
        let log = pods.logs(&p.name_any(), &LogParams::default()).await.ok()?;
        log.contains("start").then_some((p, log))
    })
    .await;
    let (running, log) = pod;
    assert!(
        !log.contains("done"),
        "read while the process still runs: {log:?}"
    );
    assert!(
        log.contains("hello from env"),
        "container env reaches the process: {log:?}"
    );
    let cs = running
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    assert_eq!(cs.len(), 1);
    assert_eq!((cs[0].ready, cs[0].started), (true, Some(true)));
    assert!(
        cs[0]
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .is_some()
    );
    let owner = running.owner_references();
    assert_eq!(
        (owner.len(), owner[0].kind.as_str(), owner[0].name.as_str()),
        (1, "Job", "ok")
    );
    assert!(running.name_any().starts_with("ok-") && running.name_any().len() == 8);
    let active = jobs.get("ok").await.expect("job");
    assert!(
        active
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .is_some()
    );
    assert_eq!(active.status.as_ref().and_then(|s| s.active), Some(1));

    let done = eventually("the Job to complete", 15, || async {
        let j = jobs.get("ok").await.ok()?;
        conditions(&j)
            .iter()
            .any(|c| c.0 == "Complete")
            .then_some(j)
    })
    .await;
    assert_eq!(
        conditions(&done),
        vec![
            (
                "SuccessCriteriaMet".to_string(),
                "True".to_string(),
                "CompletionsReached".to_string()
            ),
            (
                "Complete".to_string(),
                "True".to_string(),
                "CompletionsReached".to_string()
            ),
        ]
    );
    let st = done.status.clone().unwrap_or_default();
    assert!(st.completion_time.is_some());
    assert_eq!((st.succeeded, st.active, st.failed), (Some(1), None, None));

    let finished = pods.get(&running.name_any()).await.expect("pod");
    assert_eq!(phase(&finished), "Succeeded");
    let t = terminated(&finished).expect("terminated state");
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
    assert!(t.finished_at.is_some() && t.started_at.is_some());
    let log = pods
        .logs(&running.name_any(), &LogParams::default())
        .await
        .expect("log");
    assert_eq!(log, "start\nhello from env\ndone\n");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_failing_job_is_retried_up_to_the_backoff_limit_then_fails() {
    let (emu, jobs, pods) = runner(Vec::new(), Vec::new()).await;
    jobs.create(
        &PostParams::default(),
        &job("boom", &["/bin/sh", "-c", "echo boom >&2; exit 3"], 1),
    )
    .await
    .expect("job");
    let failed = eventually("the Job to fail", 15, || async {
        let j = jobs.get("boom").await.ok()?;
        conditions(&j).iter().any(|c| c.0 == "Failed").then_some(j)
    })
    .await;
    assert_eq!(
        conditions(&failed),
        vec![
            (
                "FailureTarget".to_string(),
                "True".to_string(),
                "BackoffLimitExceeded".to_string()
            ),
            (
                "Failed".to_string(),
                "True".to_string(),
                "BackoffLimitExceeded".to_string()
            ),
        ]
    );
    let cond = failed
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.last().cloned());
    assert_eq!(
        cond.and_then(|c| c.message).as_deref(),
        Some("Job has reached the specified backoff limit")
    );
    assert_eq!(failed.status.as_ref().and_then(|s| s.failed), Some(2));
    assert!(
        failed
            .status
            .as_ref()
            .and_then(|s| s.completion_time.as_ref())
            .is_none()
    );

    let all = job_pods(&pods, "boom").await;
    assert_eq!(
        all.len(),
        2,
        "backoffLimit 1: the first pod and one replacement"
    );
    assert_ne!(all[0].name_any(), all[1].name_any());
    for p in &all {
        assert_eq!(phase(p), "Failed");
        let t = terminated(p).expect("terminated");
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
        let log = pods
            .logs(&p.name_any(), &LogParams::default())
            .await
            .expect("log");
        assert_eq!(log, "boom\n", "stderr is part of the log");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn a_missing_command_fails_the_pod_with_start_error() {
    let (emu, jobs, pods) = runner(Vec::new(), Vec::new()).await;
    jobs.create(
        &PostParams::default(),
        &job("nocmd", &["/nonexistent/bin/tool", "x"], 0),
    )
    .await
    .expect("job");
    eventually("the Job to fail", 10, || async {
        let j = jobs.get("nocmd").await.ok()?;
        conditions(&j).iter().any(|c| c.0 == "Failed").then_some(())
    })
    .await;
    let p = job_pods(&pods, "nocmd")
        .await
        .into_iter()
        .next()
        .expect("a pod");
    assert_eq!(phase(&p), "Failed");
    let t = terminated(&p).expect("terminated");
    assert_eq!(
        (t.exit_code, t.reason.as_deref()),
        (128, Some("StartError"))
    );
    assert!(
        t.message
            .unwrap_or_default()
            .contains("/nonexistent/bin/tool")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn path_map_and_extra_env_are_applied_to_the_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tool = dir.path().join("tool.sh");
    std::fs::write(
        &tool,
        "#!/bin/sh\necho \"args: $*\"\necho \"extra: $EXTRA\"\necho \"cwd: $(pwd)\"\n",
    )
    .expect("script");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let root = dir.path().to_string_lossy().into_owned();
    let (emu, jobs, pods) = runner(
        vec![("/opt/tool".to_string(), root.clone())],
        vec![("EXTRA".to_string(), "from the harness".to_string())],
    )
    .await;
    let mut j = job(
        "mapped",
        &["/opt/tool/tool.sh", "/opt/tool/data.txt", "plain"],
        0,
    );
    if let Some(c) = j
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .and_then(|s| s.containers.first_mut())
    {
        c.working_dir = Some("/opt/tool/work".into());
    }
    jobs.create(&PostParams::default(), &j).await.expect("job");
    eventually("the Job to complete", 10, || async {
        let j = jobs.get("mapped").await.ok()?;
        conditions(&j)
            .iter()
            .any(|c| c.0 == "Complete")
            .then_some(())
    })
    .await;
    let p = job_pods(&pods, "mapped")
        .await
        .into_iter()
        .next()
        .expect("a pod");
    let log = pods
        .logs(&p.name_any(), &LogParams::default())
        .await
        .expect("log");
    assert_eq!(
        log,
        format!("args: {root}/data.txt plain\nextra: from the harness\ncwd: {root}/work\n")
    );
    emu.shutdown().await;
}

fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")) {
        Err(_) => true,
        // a zombie has exited; only its parent has not reaped it yet
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn deleting_a_running_job_kills_its_processes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_string_lossy().into_owned();
    let (emu, jobs, pods) = runner(Vec::new(), Vec::new()).await;
    // `$$$$`: Kubernetes turns `$$` into `$` in command and args, as the emulator does.
    let script = format!("echo $$$$ > {d}/shell.pid; sleep 300 & echo $! > {d}/sleep.pid; wait");
    jobs.create(
        &PostParams::default(),
        &job("sleeper", &["/bin/sh", "-c", &script], 0),
    )
    .await
    .expect("job");
    let (shell, sleeper) = eventually("the processes to start", 10, || async {
        let shell = std::fs::read_to_string(dir.path().join("shell.pid")).ok()?;
        let sleeper = std::fs::read_to_string(dir.path().join("sleep.pid")).ok()?;
        let (shell, sleeper) = (shell.trim().to_string(), sleeper.trim().to_string());
        (!shell.is_empty() && !sleeper.is_empty()).then_some((shell, sleeper))
    })
    .await;
    let pod = eventually("a Running pod", 10, || async {
        job_pods(&pods, "sleeper")
            .await
            .into_iter()
            .find(|p| phase(p) == "Running")
    })
    .await;
    assert!(
        !process_gone(&shell) && !process_gone(&sleeper),
        "both processes run"
    );

    jobs.delete("sleeper", &DeleteParams::background())
        .await
        .expect("deleted");
    eventually("the shell and its sleep to be killed", 10, || async {
        (process_gone(&shell) && process_gone(&sleeper)).then_some(())
    })
    .await;
    assert!(
        pods.get_opt(&pod.name_any()).await.expect("get").is_none(),
        "the pod went with the Job"
    );
    assert!(jobs.get_opt("sleeper").await.expect("get").is_none());
    emu.shutdown().await;
}

//! Runner mode: the emulator plays Job controller and kubelet, running a
//! Job's first container as a local process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use super::store::{
    Key, Res, Store, new_uid, now_rfc3339, random_suffix, random_u64, str_at, value_at,
};
use super::validate::default_pod;
use super::{RunnerConfig, Shared};

/// How a pod's container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    /// The pod was deleted while its process ran.
    Killed,
}

/// Starts the controller of a freshly created Job.
pub(crate) fn start_job(shared: &Arc<Shared>, ns: &str, name: &str, uid: &str) {
    let Some(cfg) = shared.runner.clone() else {
        return;
    };
    let job = JobRef {
        key: (ns.to_string(), name.to_string()),
        uid: uid.to_string(),
    };
    let task = tokio::spawn(job_controller(shared.clone(), cfg, job));
    shared.track(task.abort_handle());
}

fn condition(ty: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": ty,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

fn pod_condition(ty: &str, status: bool, reason: Option<&str>, now: &str) -> Value {
    let mut c = json!({
        "type": ty,
        "status": if status { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": now,
    });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// Sets a counter of the Job status, omitting it at 0 like the Go `omitempty` fields.
fn set_count(status: &mut Map<String, Value>, key: &str, n: i64) {
    if n == 0 {
        status.remove(key);
    } else {
        status.insert(key.to_string(), json!(n));
    }
}

fn count(status: &Map<String, Value>, key: &str) -> i64 {
    status.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// Applies `f` to the stored object if it still is the same one (same uid).
fn modify(store: &mut Store, res: Res, key: &Key, uid: &str, f: impl FnOnce(&mut Value)) -> bool {
    let Some(obj) = store.get(res, &key.0, &key.1) else {
        return false;
    };
    if str_at(&obj, &["metadata", "uid"]) != uid {
        return false;
    }
    let mut obj = (*obj).clone();
    f(&mut obj);
    store.put(res, obj);
    true
}

fn job_status(job: &mut Value) -> &mut Map<String, Value> {
    if !job.get("status").is_some_and(Value::is_object) {
        job["status"] = json!({});
    }
    match job.get_mut("status") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The pod the Job controller creates from the template.
fn pod_for(job: &Value, name: &str) -> Value {
    let template = job["spec"]["template"].clone();
    let job_name = str_at(job, &["metadata", "name"]);
    let job_uid = str_at(job, &["metadata", "uid"]);
    let now = now_rfc3339();
    let mut meta = json!({
        "name": name,
        "generateName": format!("{}-", truncate_name(job_name)),
        "namespace": str_at(job, &["metadata", "namespace"]),
        "uid": new_uid(),
        "creationTimestamp": now,
        "labels": template["metadata"].get("labels").cloned().unwrap_or(json!({})),
        "ownerReferences": [{
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job_name,
            "uid": job_uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }],
    });
    if let Some(a) = template["metadata"]
        .get("annotations")
        .filter(|a| !a.is_null())
    {
        meta["annotations"] = a.clone();
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    });
    default_pod(&mut pod);
    pod["spec"]["nodeName"] = json!("emulator");
    pod["status"] = json!({
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [pod_condition("PodScheduled", true, None, &now)],
    });
    pod
}

fn truncate_name(name: &str) -> &str {
    // maxGeneratedNameLength: 63 - 5 random characters
    name.get(..58).unwrap_or(name)
}

/// The Job a controller runs pods for.
struct JobRef {
    key: Key,
    uid: String,
}

/// A pod the controller created, and the container it runs.
struct PodRef {
    key: Key,
    uid: String,
    container: Value,
}

/// What the controller does after a pod ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// The Job is complete, failed or gone.
    Stop,
    /// Another pod, after the retry delay (the last one failed).
    Retry,
    /// Another pod at once (more completions are wanted).
    Continue,
}

async fn job_controller(shared: Arc<Shared>, cfg: RunnerConfig, job: JobRef) {
    loop {
        let Some(pod) = create_pod(&shared, &job).await else {
            return;
        };
        let outcome = run_pod(&shared, &cfg, &pod, &job).await;
        match record_outcome(&shared, &job, outcome).await {
            Next::Stop => return,
            Next::Retry => tokio::time::sleep(cfg.retry_delay).await,
            Next::Continue => {}
        }
    }
}

/// The stored Job if it still is the controller's (same uid).
fn current_job(store: &Store, job: &JobRef) -> Option<Arc<Value>> {
    store
        .get(Res::Jobs, &job.key.0, &job.key.1)
        .filter(|j| str_at(j, &["metadata", "uid"]) == job.uid)
}

/// Creates the Job's next pod and counts it active; `None` once the Job is gone.
async fn create_pod(shared: &Shared, job: &JobRef) -> Option<PodRef> {
    let (ns, name) = (&job.key.0, &job.key.1);
    let mut store = shared.store.lock().await;
    let stored = current_job(&store, job)?;
    let mut pod_name = format!("{}-{}", truncate_name(name), random_suffix());
    while store.contains(Res::Pods, ns, &pod_name) {
        pod_name = format!("{}-{}", truncate_name(name), random_suffix());
    }
    let pod = pod_for(&stored, &pod_name);
    let uid = str_at(&pod, &["metadata", "uid"]).to_string();
    let container = value_at(&pod, &["spec", "containers"])
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .cloned()
        .unwrap_or(json!({}));
    store.put(Res::Pods, pod);
    let now = now_rfc3339();
    modify(&mut store, Res::Jobs, &job.key, &job.uid, |job| {
        let st = job_status(job);
        if !st.contains_key("startTime") {
            st.insert("startTime".into(), json!(now));
        }
        set_count(st, "active", 1);
        st.insert("ready".into(), json!(0));
        st.insert("terminating".into(), json!(0));
        st.insert("uncountedTerminatedPods".into(), json!({}));
    });
    Some(PodRef {
        key: (ns.clone(), pod_name),
        uid,
        container,
    })
}

/// Counts the pod's outcome in the Job status, completing or failing the Job
/// when it reaches its completions or exceeds its backoff limit.
async fn record_outcome(shared: &Shared, job: &JobRef, outcome: Outcome) -> Next {
    let mut store = shared.store.lock().await;
    let Some(stored) = current_job(&store, job) else {
        return Next::Stop;
    };
    let limits = Limits {
        completions: value_at(&stored, &["spec", "completions"])
            .and_then(Value::as_i64)
            .unwrap_or(1),
        backoff: value_at(&stored, &["spec", "backoffLimit"])
            .and_then(Value::as_i64)
            .unwrap_or(6),
    };
    let now = now_rfc3339();
    let mut done = false;
    modify(&mut store, Res::Jobs, &job.key, &job.uid, |job| {
        let st = job_status(job);
        set_count(st, "active", 0);
        st.insert("ready".into(), json!(0));
        st.insert("terminating".into(), json!(0));
        st.insert("uncountedTerminatedPods".into(), json!({}));
        done = count_outcome(st, outcome, limits, &now);
    });
    if done {
        Next::Stop
    } else if outcome != Outcome::Succeeded {
        Next::Retry
    } else {
        Next::Continue
    }
}

/// `spec.completions` and `spec.backoffLimit` of a Job.
#[derive(Debug, Clone, Copy)]
struct Limits {
    completions: i64,
    backoff: i64,
}

fn add_conditions(st: &mut Map<String, Value>, list: Vec<Value>) {
    let entry = st.entry("conditions").or_insert(json!([]));
    if let Value::Array(cs) = entry {
        cs.extend(list);
    }
}

/// Adds one succeeded or failed pod to the Job status; true once the Job is
/// complete or failed (its conditions then set).
fn count_outcome(st: &mut Map<String, Value>, outcome: Outcome, limits: Limits, now: &str) -> bool {
    if outcome == Outcome::Succeeded {
        let succeeded = count(st, "succeeded") + 1;
        set_count(st, "succeeded", succeeded);
        if succeeded < limits.completions {
            return false;
        }
        let msg = "Reached expected number of succeeded pods";
        add_conditions(
            st,
            vec![
                condition("SuccessCriteriaMet", "CompletionsReached", msg, now),
                condition("Complete", "CompletionsReached", msg, now),
            ],
        );
        st.insert("completionTime".into(), json!(now));
    } else {
        let failed = count(st, "failed") + 1;
        set_count(st, "failed", failed);
        if failed <= limits.backoff {
            return false;
        }
        let msg = "Job has reached the specified backoff limit";
        add_conditions(
            st,
            vec![
                condition("FailureTarget", "BackoffLimitExceeded", msg, now),
                condition("Failed", "BackoffLimitExceeded", msg, now),
            ],
        );
    }
    true
}

/// Replaces a mapped prefix (`/opt/flink` → `$FLINK_HOME`) at the start of `s`.
pub(crate) fn map_path(s: &str, map: &[(String, String)]) -> String {
    for (from, to) in map {
        if from.is_empty() {
            continue;
        }
        if let Some(rest) = s.strip_prefix(from.as_str())
            && (rest.is_empty()
                || rest.starts_with('/')
                || rest.starts_with(char::is_whitespace)
                || from.ends_with('/'))
        {
            return format!("{to}{rest}");
        }
    }
    s.to_string()
}

/// Kubernetes' `$(VAR)` expansion of command, args and env values.
pub(crate) fn expand(s: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let var = &inner[..end];
            match env.get(var) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(var);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn kill_group(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Kills every process of the group (the container), used on shutdown too.
pub(crate) fn kill_now(pid: u32) {
    kill_group(pid, rustix::process::Signal::KILL);
}

fn start_error_message(cmd: &str, err: &std::io::Error) -> String {
    let detail = match err.kind() {
        std::io::ErrorKind::NotFound if cmd.contains('/') => {
            format!("stat {cmd}: no such file or directory")
        }
        std::io::ErrorKind::NotFound => "executable file not found in $PATH".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => err.to_string(),
    };
    format!(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: exec: \"{cmd}\": {detail}: unknown"
    )
}

fn container_id() -> String {
    format!(
        "containerd://{:016x}{:016x}{:016x}{:016x}",
        random_u64(),
        random_u64(),
        random_u64(),
        random_u64()
    )
}

/// A container's process as the kubelet starts it: command line and
/// environment after `$(VAR)` expansion and path mapping, working directory.
struct Process {
    argv: Vec<String>,
    env: HashMap<String, String>,
    cwd: PathBuf,
    /// The working directory is the emulator's own, removed afterwards.
    temp_cwd: bool,
}

impl Process {
    fn for_pod(cfg: &RunnerConfig, pod: &PodRef) -> Self {
        let env = container_env(cfg, pod);
        let argv: Vec<String> = strings(pod.container.get("command"))
            .into_iter()
            .chain(strings(pod.container.get("args")))
            .map(|a| map_path(&expand(&a, &env), &cfg.path_map))
            .collect();
        let working_dir = str_at(&pod.container, &["workingDir"]);
        let (cwd, temp_cwd) = if working_dir.is_empty() {
            let dir = std::env::temp_dir().join(format!(
                "k8s-emulator-{}-{}-{}",
                std::process::id(),
                pod.key.0,
                pod.key.1
            ));
            (dir, true)
        } else {
            (PathBuf::from(map_path(working_dir, &cfg.path_map)), false)
        };
        Process {
            argv,
            env,
            cwd,
            temp_cwd,
        }
    }

    fn remove_temp_cwd(&self) {
        if self.temp_cwd {
            let _ = std::fs::remove_dir_all(&self.cwd);
        }
    }
}

/// The container's `env`, in order (a value may use the earlier ones), with
/// the downward API's pod fields; values path-mapped.
fn container_env(cfg: &RunnerConfig, pod: &PodRef) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    for e in value_at(&pod.container, &["env"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(e, &["name"]).to_string();
        if name.is_empty() {
            continue;
        }
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            Some(expand(v, &env))
        } else {
            match str_at(e, &["valueFrom", "fieldRef", "fieldPath"]) {
                "metadata.name" => Some(pod.key.1.clone()),
                "metadata.namespace" => Some(pod.key.0.clone()),
                "metadata.uid" => Some(pod.uid.clone()),
                "spec.nodeName" => Some("emulator".to_string()),
                "status.podIP" | "status.hostIP" => Some("127.0.0.1".to_string()),
                _ if e.get("valueFrom").is_some() => None,
                _ => Some(String::new()),
            }
        };
        if let Some(v) = value {
            env.insert(name, map_path(&v, &cfg.path_map));
        }
    }
    env
}

/// The container's start: its time and containerd id.
struct Started {
    at: String,
    cid: String,
}

/// The kubelet's part: runs the container, streams its log, reports the end.
async fn run_pod(shared: &Arc<Shared>, cfg: &RunnerConfig, pod: &PodRef, job: &JobRef) -> Outcome {
    let process = Process::for_pod(cfg, pod);
    if !mark_creating(shared, pod).await {
        return Outcome::Killed;
    }
    let (mut child, reader) = match spawn(&process.argv, &process.env, cfg, &process.cwd) {
        Ok(x) => x,
        Err(err) => {
            mark_start_error(shared, pod, &process.argv, &err).await;
            process.remove_temp_cwd();
            return Outcome::Failed;
        }
    };
    let pid = child.id().unwrap_or(0);
    shared.register_process(&pod.key, pid);
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let started = Started {
        at: now_rfc3339(),
        cid: container_id(),
    };
    let alive = mark_running(shared, pod, job, kill_tx, &started).await;
    let mut reader_task = stream_log(shared, pod, reader);
    let (status, killed) = wait_or_kill(&mut child, pid, alive, kill_rx).await;
    // The container is gone: so is every process it started.
    kill_now(pid);
    if tokio::time::timeout(Duration::from_secs(2), &mut reader_task)
        .await
        .is_err()
    {
        reader_task.abort();
    }
    shared.unregister_process(&pod.key);
    process.remove_temp_cwd();
    let code = status.map_or(137, |s| {
        use std::os::unix::process::ExitStatusExt;
        s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
    });
    tracing::info!(pod = %pod.key.1, code, killed, "container exited");
    let updated = mark_finished(shared, pod, code, &started).await;
    if killed || !updated {
        Outcome::Killed
    } else if code == 0 {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    }
}

/// The pod scheduled and its container being created; false if the pod is gone.
async fn mark_creating(shared: &Shared, pod: &PodRef) -> bool {
    let cname = str_at(&pod.container, &["name"]);
    let image = str_at(&pod.container, &["image"]);
    let now = now_rfc3339();
    let mut store = shared.store.lock().await;
    modify(&mut store, Res::Pods, &pod.key, &pod.uid, |p| {
        p["status"] = json!({
            "phase": "Pending",
            "qosClass": "BestEffort",
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": now,
            "conditions": [
                pod_condition("PodReadyToStartContainers", false, None, &now),
                pod_condition("Initialized", true, None, &now),
                pod_condition("Ready", false, Some("ContainersNotReady"), &now),
                pod_condition("ContainersReady", false, Some("ContainersNotReady"), &now),
                pod_condition("PodScheduled", true, None, &now),
            ],
            "containerStatuses": [{
                "name": cname,
                "image": image,
                "imageID": "",
                "ready": false,
                "restartCount": 0,
                "started": false,
                "state": {"waiting": {"reason": "ContainerCreating"}},
                "lastState": {},
            }],
        });
    })
}

/// The pod failed: its container could not start (`StartError`, exit code 128).
async fn mark_start_error(shared: &Shared, pod: &PodRef, argv: &[String], err: &std::io::Error) {
    let message = match argv.first() {
        None => "failed to create containerd task: the emulator cannot run an image's entrypoint: the container has no command".to_string(),
        Some(cmd) => start_error_message(cmd, err),
    };
    tracing::info!(pod = %pod.key.1, %message, "container failed to start");
    let now = now_rfc3339();
    let mut store = shared.store.lock().await;
    modify(&mut store, Res::Pods, &pod.key, &pod.uid, |p| {
        finish_status(p, &now, false);
        p["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
            "exitCode": 128,
            "reason": "StartError",
            "message": message,
            "startedAt": "1970-01-01T00:00:00Z",
            "finishedAt": now,
            "containerID": container_id(),
        }});
    });
}

/// The pod running and ready, the Job counting it ready, and `kill` registered
/// to stop the process when the pod is deleted; false if the pod is gone.
async fn mark_running(
    shared: &Shared,
    pod: &PodRef,
    job: &JobRef,
    kill: oneshot::Sender<()>,
    started: &Started,
) -> bool {
    let at = &started.at;
    let mut store = shared.store.lock().await;
    let registered = store.set_kill_switch(&pod.key, kill);
    let alive = registered
        && modify(&mut store, Res::Pods, &pod.key, &pod.uid, |p| {
            let st = &mut p["status"];
            st["phase"] = json!("Running");
            st["podIP"] = json!("127.0.0.1");
            st["podIPs"] = json!([{"ip": "127.0.0.1"}]);
            st["conditions"] = json!([
                pod_condition("PodReadyToStartContainers", true, None, at),
                pod_condition("Initialized", true, None, at),
                pod_condition("Ready", true, None, at),
                pod_condition("ContainersReady", true, None, at),
                pod_condition("PodScheduled", true, None, at),
            ]);
            let cs = &mut st["containerStatuses"][0];
            cs["ready"] = json!(true);
            cs["started"] = json!(true);
            cs["containerID"] = json!(started.cid);
            cs["state"] = json!({"running": {"startedAt": at}});
        });
    if alive {
        modify(&mut store, Res::Jobs, &job.key, &job.uid, |j| {
            job_status(j).insert("ready".into(), json!(1));
        });
    }
    alive
}

/// Streams the merged stdout/stderr into the pod log as it comes.
fn stream_log(
    shared: &Arc<Shared>,
    pod: &PodRef,
    mut reader: tokio::net::unix::pipe::Receiver,
) -> tokio::task::JoinHandle<()> {
    let shared = shared.clone();
    let key = pod.key.clone();
    let container = str_at(&pod.container, &["name"]).to_string();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut store = shared.store.lock().await;
                    if store.contains(Res::Pods, &key.0, &key.1) {
                        store.append_log(&key, &container, &buf[..n]);
                    }
                }
            }
        }
    })
}

/// Waits for the process to exit, or terminates it when the pod is deleted
/// (or already was: `alive` false); returns its status and whether it was killed.
async fn wait_or_kill(
    child: &mut tokio::process::Child,
    pid: u32,
    alive: bool,
    kill: oneshot::Receiver<()>,
) -> (Option<std::process::ExitStatus>, bool) {
    if !alive {
        return (terminate(child, pid).await, true);
    }
    tokio::select! {
        st = child.wait() => (st.ok(), false),
        _ = kill => (terminate(child, pid).await, true),
    }
}

/// The pod succeeded or failed with the container's exit code; false if the pod is gone.
async fn mark_finished(shared: &Shared, pod: &PodRef, code: i32, started: &Started) -> bool {
    let finished_at = now_rfc3339();
    let mut store = shared.store.lock().await;
    store.clear_kill_switch(&pod.key);
    modify(&mut store, Res::Pods, &pod.key, &pod.uid, |p| {
        finish_status(p, &finished_at, code == 0);
        p["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
            "exitCode": code,
            "reason": if code == 0 { "Completed" } else { "Error" },
            "startedAt": started.at,
            "finishedAt": finished_at,
            "containerID": started.cid,
        }});
    })
}

/// Pod status of a finished pod (container state set by the caller).
fn finish_status(pod: &mut Value, now: &str, success: bool) {
    let reason = if success { "PodCompleted" } else { "PodFailed" };
    let st = &mut pod["status"];
    st["phase"] = json!(if success { "Succeeded" } else { "Failed" });
    st["conditions"] = json!([
        pod_condition("PodReadyToStartContainers", false, None, now),
        pod_condition("Initialized", true, Some(reason), now),
        pod_condition("Ready", false, Some(reason), now),
        pod_condition("ContainersReady", false, Some(reason), now),
        pod_condition("PodScheduled", true, None, now),
    ]);
    let cs = &mut st["containerStatuses"][0];
    cs["ready"] = json!(false);
    cs["started"] = json!(false);
}

/// SIGTERM, a short grace, then SIGKILL; returns the exit status.
async fn terminate(
    child: &mut tokio::process::Child,
    pid: u32,
) -> Option<std::process::ExitStatus> {
    kill_group(pid, rustix::process::Signal::TERM);
    match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(st) => st.ok(),
        Err(_) => {
            kill_now(pid);
            child.wait().await.ok()
        }
    }
}

fn spawn(
    argv: &[String],
    env: &HashMap<String, String>,
    cfg: &RunnerConfig,
    cwd: &PathBuf,
) -> std::io::Result<(tokio::process::Child, tokio::net::unix::pipe::Receiver)> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no command",
        ));
    };
    std::fs::create_dir_all(cwd)?;
    let (tx, rx) = tokio::net::unix::pipe::pipe()?;
    let out = tx.into_blocking_fd()?;
    let err = out.try_clone()?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env)
        .envs(cfg.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn()?;
    // Dropping the command closes our copies of the pipe's write end.
    drop(cmd);
    Ok((child, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_map_replaces_whole_prefixes_only() {
        let map = vec![("/opt/flink".to_string(), "/home/x/flink".to_string())];
        assert_eq!(
            map_path("/opt/flink/bin/flink", &map),
            "/home/x/flink/bin/flink"
        );
        assert_eq!(map_path("/opt/flink", &map), "/home/x/flink");
        assert_eq!(map_path("/opt/flinkx", &map), "/opt/flinkx");
        assert_eq!(map_path("run", &map), "run");
    }

    #[test]
    fn dollar_parens_expand_known_variables() {
        let env = HashMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("$HOME", &env), "$HOME");
    }
}

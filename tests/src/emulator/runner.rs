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
    let task = tokio::spawn(job_controller(
        shared.clone(),
        cfg,
        ns.to_string(),
        name.to_string(),
        uid.to_string(),
    ));
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

async fn job_controller(
    shared: Arc<Shared>,
    cfg: RunnerConfig,
    ns: String,
    name: String,
    uid: String,
) {
    let job_key: Key = (ns.clone(), name.clone());
    loop {
        let started = {
            let mut store = shared.store.lock().await;
            let Some(job) = store
                .get(Res::Jobs, &ns, &name)
                .filter(|j| str_at(j, &["metadata", "uid"]) == uid)
            else {
                return;
            };
            let mut pod_name = format!("{}-{}", truncate_name(&name), random_suffix());
            while store.contains(Res::Pods, &ns, &pod_name) {
                pod_name = format!("{}-{}", truncate_name(&name), random_suffix());
            }
            let pod = pod_for(&job, &pod_name);
            let pod_uid = str_at(&pod, &["metadata", "uid"]).to_string();
            let container = value_at(&pod, &["spec", "containers"])
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .cloned()
                .unwrap_or(json!({}));
            store.put(Res::Pods, pod);
            let now = now_rfc3339();
            modify(&mut store, Res::Jobs, &job_key, &uid, |job| {
                let st = job_status(job);
                if !st.contains_key("startTime") {
                    st.insert("startTime".into(), json!(now));
                }
                set_count(st, "active", 1);
                st.insert("ready".into(), json!(0));
                st.insert("terminating".into(), json!(0));
                st.insert("uncountedTerminatedPods".into(), json!({}));
            });
            ((ns.clone(), pod_name), pod_uid, container)
        };
        let (pod_key, pod_uid, container) = started;
        let outcome = run_pod(
            &shared,
            &cfg,
            &pod_key,
            &pod_uid,
            &container,
            (&job_key, &uid),
        )
        .await;
        let retry = {
            let mut store = shared.store.lock().await;
            let Some(job) = store
                .get(Res::Jobs, &ns, &name)
                .filter(|j| str_at(j, &["metadata", "uid"]) == uid)
            else {
                return;
            };
            let completions = value_at(&job, &["spec", "completions"])
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let backoff = value_at(&job, &["spec", "backoffLimit"])
                .and_then(Value::as_i64)
                .unwrap_or(6);
            let now = now_rfc3339();
            let mut done = false;
            modify(&mut store, Res::Jobs, &job_key, &uid, |job| {
                let st = job_status(job);
                set_count(st, "active", 0);
                st.insert("ready".into(), json!(0));
                st.insert("terminating".into(), json!(0));
                st.insert("uncountedTerminatedPods".into(), json!({}));
                let conditions = |st: &mut Map<String, Value>, list: Vec<Value>| {
                    let entry = st.entry("conditions").or_insert(json!([]));
                    if let Value::Array(cs) = entry {
                        cs.extend(list);
                    }
                };
                if outcome == Outcome::Succeeded {
                    let succeeded = count(st, "succeeded") + 1;
                    set_count(st, "succeeded", succeeded);
                    if succeeded >= completions {
                        let msg = "Reached expected number of succeeded pods";
                        conditions(
                            st,
                            vec![
                                condition("SuccessCriteriaMet", "CompletionsReached", msg, &now),
                                condition("Complete", "CompletionsReached", msg, &now),
                            ],
                        );
                        st.insert("completionTime".into(), json!(now));
                        done = true;
                    }
                } else {
                    let failed = count(st, "failed") + 1;
                    set_count(st, "failed", failed);
                    if failed > backoff {
                        let msg = "Job has reached the specified backoff limit";
                        conditions(
                            st,
                            vec![
                                condition("FailureTarget", "BackoffLimitExceeded", msg, &now),
                                condition("Failed", "BackoffLimitExceeded", msg, &now),
                            ],
                        );
                        done = true;
                    }
                }
            });
            if done {
                return;
            }
            outcome != Outcome::Succeeded
        };
        if retry {
            tokio::time::sleep(cfg.retry_delay).await;
        }
    }
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

/// The kubelet's part: runs the container, streams its log, reports the end.
async fn run_pod(
    shared: &Arc<Shared>,
    cfg: &RunnerConfig,
    key: &Key,
    pod_uid: &str,
    container: &Value,
    job: (&Key, &str),
) -> Outcome {
    let cname = str_at(container, &["name"]).to_string();
    let image = str_at(container, &["image"]).to_string();
    let pod_name = key.1.clone();

    // Environment: the emulator's, then the container's, then extra_env.
    let mut env: HashMap<String, String> = HashMap::new();
    for e in value_at(container, &["env"])
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
                "metadata.name" => Some(pod_name.clone()),
                "metadata.namespace" => Some(key.0.clone()),
                "metadata.uid" => Some(pod_uid.to_string()),
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
    let argv: Vec<String> = strings(container.get("command"))
        .into_iter()
        .chain(strings(container.get("args")))
        .map(|a| map_path(&expand(&a, &env), &cfg.path_map))
        .collect();
    let working_dir = str_at(container, &["workingDir"]);
    let (cwd, temp_cwd) = if working_dir.is_empty() {
        let dir = std::env::temp_dir().join(format!(
            "k8s-emulator-{}-{}-{}",
            std::process::id(),
            key.0,
            pod_name
        ));
        (dir, true)
    } else {
        (PathBuf::from(map_path(working_dir, &cfg.path_map)), false)
    };

    let now = now_rfc3339();
    {
        let mut store = shared.store.lock().await;
        let alive = modify(&mut store, Res::Pods, key, pod_uid, |pod| {
            pod["status"] = json!({
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
        });
        if !alive {
            return Outcome::Killed;
        }
    }

    let spawned = spawn(&argv, &env, cfg, &cwd);
    let (mut child, reader) = match spawned {
        Ok(x) => x,
        Err(err) => {
            let cmd = argv.first().cloned().unwrap_or_default();
            let message = if argv.is_empty() {
                "failed to create containerd task: the emulator cannot run an image's entrypoint: the container has no command".to_string()
            } else {
                start_error_message(&cmd, &err)
            };
            tracing::info!(pod = %pod_name, %message, "container failed to start");
            let now = now_rfc3339();
            let mut store = shared.store.lock().await;
            modify(&mut store, Res::Pods, key, pod_uid, |pod| {
                finish_status(pod, &now, false);
                pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": message,
                    "startedAt": "1970-01-01T00:00:00Z",
                    "finishedAt": now,
                    "containerID": container_id(),
                }});
            });
            if temp_cwd {
                let _ = std::fs::remove_dir_all(&cwd);
            }
            return Outcome::Failed;
        }
    };
    let pid = child.id().unwrap_or(0);
    shared.register_process(key, pid);
    let (kill_tx, kill_rx) = oneshot::channel::<()>();
    let started_at = now_rfc3339();
    let cid = container_id();
    let alive = {
        let mut store = shared.store.lock().await;
        let registered = store.set_kill_switch(key, kill_tx);
        let alive = registered
            && modify(&mut store, Res::Pods, key, pod_uid, |pod| {
                let st = &mut pod["status"];
                st["phase"] = json!("Running");
                st["podIP"] = json!("127.0.0.1");
                st["podIPs"] = json!([{"ip": "127.0.0.1"}]);
                st["conditions"] = json!([
                    pod_condition("PodReadyToStartContainers", true, None, &started_at),
                    pod_condition("Initialized", true, None, &started_at),
                    pod_condition("Ready", true, None, &started_at),
                    pod_condition("ContainersReady", true, None, &started_at),
                    pod_condition("PodScheduled", true, None, &started_at),
                ]);
                let cs = &mut st["containerStatuses"][0];
                cs["ready"] = json!(true);
                cs["started"] = json!(true);
                cs["containerID"] = json!(cid);
                cs["state"] = json!({"running": {"startedAt": started_at}});
            });
        if alive {
            modify(&mut store, Res::Jobs, job.0, job.1, |j| {
                job_status(j).insert("ready".into(), json!(1));
            });
        }
        alive
    };

    // Stream the merged stdout/stderr into the pod log as it comes.
    let log_shared = shared.clone();
    let log_key = key.clone();
    let log_container = cname.clone();
    let mut reader_task = tokio::spawn(async move {
        let mut reader = reader;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut store = log_shared.store.lock().await;
                    if store.contains(Res::Pods, &log_key.0, &log_key.1) {
                        store.append_log(&log_key, &log_container, &buf[..n]);
                    }
                }
            }
        }
    });

    let mut killed = !alive;
    let status = if killed {
        terminate(&mut child, pid).await
    } else {
        tokio::select! {
            st = child.wait() => st.ok(),
            _ = kill_rx => {
                killed = true;
                terminate(&mut child, pid).await
            }
        }
    };
    // The container is gone: so is every process it started.
    kill_now(pid);
    if tokio::time::timeout(Duration::from_secs(2), &mut reader_task)
        .await
        .is_err()
    {
        reader_task.abort();
    }
    shared.unregister_process(key);
    if temp_cwd {
        let _ = std::fs::remove_dir_all(&cwd);
    }
    let code = status.map_or(137, |s| {
        use std::os::unix::process::ExitStatusExt;
        s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))
    });
    tracing::info!(pod = %pod_name, code, killed, "container exited");
    let finished_at = now_rfc3339();
    let mut store = shared.store.lock().await;
    store.clear_kill_switch(key);
    let updated = modify(&mut store, Res::Pods, key, pod_uid, |pod| {
        finish_status(pod, &finished_at, code == 0);
        pod["status"]["containerStatuses"][0]["state"] = json!({"terminated": {
            "exitCode": code,
            "reason": if code == 0 { "Completed" } else { "Error" },
            "startedAt": started_at,
            "finishedAt": finished_at,
            "containerID": cid,
        }});
    });
    if killed || !updated {
        Outcome::Killed
    } else if code == 0 {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    }
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

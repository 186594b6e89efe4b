//! Scenario bench for sync: a fresh database on the stack's MongoDB, a fresh
//! in-process Kubernetes API emulator (no runner: Jobs and pods change only
//! when the scenario writes them), and the product's real `Syncer` on top.

use flink_job_sync::SyncConfig;
use flink_job_sync::adapters::flink::FlinkClient;
use flink_job_sync::adapters::k8s::Kubernetes;
use flink_job_sync::adapters::store::Store;
use flink_job_sync::config::Resolve;
use flink_job_sync::reporting::summary::Summary;
use flink_job_sync::runs::sync::{SyncRequest, Syncer};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};

use crate::emulator::{self, EmulatorConfig, RunningEmulator};
use crate::stack::{Stack, unique_name};

pub const NS: &str = "lemo-dev";

pub struct Scenario {
    pub stack: Stack,
    pub emulator: RunningEmulator,
    pub kube: kube::Client,
    pub db: mongodb::Database,
    pub records: mongodb::Collection<Document>,
    /// The configuration the syncer was built from.
    pub cfg: SyncConfig,
    pub syncer: Syncer,
}

/// The environment a deployed function would get, for this scenario.
pub fn config_for(
    stack: &Stack,
    database: &str,
    flink_url: &str,
    extra: &[(&str, &str)],
) -> SyncConfig {
    let mut vars: Vec<(String, String)> = vec![
        ("MONGODB_URI".into(), stack.mongodb_uri.clone()),
        ("MONGODB_DATABASE".into(), database.into()),
        ("FLINK_REST_URL".into(), flink_url.into()),
        ("FLINK_TIMEOUT_MS".into(), "2000".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    SyncConfig::from_lookup(|k| {
        vars.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    })
    .and_then(Resolve::resolve_given)
    .unwrap_or_else(|e| panic!("scenario config: {e}"))
}

impl Scenario {
    /// A scenario whose Flink is `flink_url` (the real cluster, or a fake).
    pub async fn new(flink_url: &str, extra_env: &[(&str, &str)]) -> Scenario {
        let stack = Stack::from_env();
        let emulator = emulator::start(EmulatorConfig::default())
            .await
            .unwrap_or_else(|e| panic!("starting an in-process Kubernetes API emulator: {e}"));
        let kube = emulator.client().await;
        let database = unique_name("fjs_scn");
        let cfg = config_for(&stack, &database, flink_url, extra_env);
        let store = Store::connect(&cfg.mongo)
            .await
            .unwrap_or_else(|e| panic!("MongoDB: {e}"));
        let flink =
            FlinkClient::from_settings(&cfg.flink).unwrap_or_else(|e| panic!("flink client: {e}"));
        let observer = Kubernetes::new(kube.clone(), &cfg.kube);
        let db = stack.mongo_client().await.database(&database);
        let syncer = Syncer::builder(store, observer)
            .flink(flink)
            .settings(cfg.sync.clone())
            .rules(cfg.rules.clone())
            .build();
        Scenario {
            records: db.collection("flink_jobs"),
            db,
            emulator,
            kube,
            cfg,
            syncer,
            stack,
        }
    }

    pub async fn insert(&self, record: Document) {
        self.records
            .insert_one(record)
            .await
            .unwrap_or_else(|e| panic!("insert record: {e}"));
    }

    pub async fn record(&self, job_id: &str) -> Document {
        self.records
            .find_one(doc! {"job_id": job_id})
            .await
            .unwrap_or_else(|e| panic!("find {job_id}: {e}"))
            .unwrap_or_else(|| panic!("record {job_id} is gone"))
    }

    pub async fn sync(&self) -> Summary {
        self.sync_with(SyncRequest::default()).await
    }

    /// One run; it panics when the run fails or writes a field of a record
    /// that sync does not own (the README: "nothing else is ever written").
    pub async fn sync_with(&self, req: SyncRequest) -> Summary {
        let before = self.all_records().await;
        let summary = self
            .syncer
            .run(&req)
            .await
            .unwrap_or_else(|e| panic!("sync run failed: {e}"));
        let foreign = crate::scope::foreign_writes(&before, &self.all_records().await);
        assert!(foreign.is_empty(), "{foreign:#?}");
        summary
    }

    /// Every record, by `_id`.
    async fn all_records(&self) -> std::collections::BTreeMap<String, Document> {
        let mut cursor = self
            .records
            .find(doc! {})
            .await
            .unwrap_or_else(|e| panic!("read records: {e}"));
        let mut out = std::collections::BTreeMap::new();
        while cursor
            .advance()
            .await
            .unwrap_or_else(|e| panic!("read records: {e}"))
        {
            let d: Document = cursor
                .deserialize_current()
                .unwrap_or_else(|e| panic!("a record: {e}"));
            out.insert(format!("{:?}", d.get("_id")), d);
        }
        out
    }

    /// Creates the Kubernetes Job the platform would have created for `name`,
    /// with one pod, then puts both into the given state.
    pub async fn k8s_job(&self, name: &str, state: JobState) -> String {
        self.k8s_job_in(NS, name, state).await
    }

    /// [`Scenario::k8s_job`] in namespace `ns`.
    pub async fn k8s_job_in(&self, ns: &str, name: &str, state: JobState) -> String {
        let jobs: Api<Job> = Api::namespaced(self.kube.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), ns);
        let job: Job = serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"app": "flink-python-job"}},
            "spec": {"backoffLimit": 0, "template": {
                "metadata": {"labels": {"app": "flink-python-job"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "flink-client", "image": "flink:2.3.0",
                    "command": ["/opt/flink/bin/flink", "run", "-py", "/opt/jobs/job.py"]}]}}}
        }))
        .unwrap_or_else(|e| panic!("job manifest: {e}"));
        let job = jobs
            .create(&PostParams::default(), &job)
            .await
            .unwrap_or_else(|e| panic!("create job {name}: {e}"));
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let pod_name = format!("{name}-pod0");
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name, "labels": {"app": "flink-python-job", "job-name": name,
                "batch.kubernetes.io/job-name": name, "controller-uid": uid},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                    "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "flink-client", "image": "flink:2.3.0"}]}
        }))
        .unwrap_or_else(|e| panic!("pod manifest: {e}"));
        pods.create(&PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("create pod: {e}"));
        self.set_state_in(ns, name, &pod_name, state).await;
        pod_name
    }

    pub async fn set_state(&self, job: &str, pod: &str, state: JobState) {
        self.set_state_in(NS, job, pod, state).await
    }

    /// [`Scenario::set_state`] in namespace `ns`.
    pub async fn set_state_in(&self, ns: &str, job: &str, pod: &str, state: JobState) {
        let jobs: Api<Job> = Api::namespaced(self.kube.clone(), ns);
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), ns);
        let (pod_status, job_status) = state.statuses();
        pods.patch_status(
            pod,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": pod_status})),
        )
        .await
        .unwrap_or_else(|e| panic!("pod status: {e}"));
        jobs.patch_status(
            job,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": job_status})),
        )
        .await
        .unwrap_or_else(|e| panic!("job status: {e}"));
    }

    /// A running pod whose container has restarted `n` times (an attached
    /// submitter restarting in place).
    pub async fn set_restarts(&self, pod: &str, n: u32) {
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        let status = json!({"phase": "Running", "containerStatuses": [{"name": "flink-client",
            "image": "flink:2.3.0", "imageID": "", "ready": true, "restartCount": n,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]});
        pods.patch_status(
            pod,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("pod status: {e}"));
    }

    /// Replaces a pod's log through the emulator's test hook.
    pub async fn set_log(&self, pod: &str, log: impl Into<Vec<u8>>) {
        self.set_log_in(NS, pod, log).await
    }

    /// [`Scenario::set_log`] in namespace `ns`.
    pub async fn set_log_in(&self, ns: &str, pod: &str, log: impl Into<Vec<u8>>) {
        let url = format!(
            "{}/emulator/v1/namespaces/{ns}/pods/{pod}/log?container=flink-client",
            self.emulator.url()
        );
        let resp = reqwest::Client::new()
            .put(url)
            .body(log.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("set log: {e}"));
        assert!(
            resp.status().is_success(),
            "set log: HTTP {}",
            resp.status()
        );
    }
}

/// States a submitting Job and its pod go through.
#[derive(Debug, Clone)]
pub enum JobState {
    Pending,
    /// Pod waiting on a container problem (e.g. ImagePullBackOff).
    Waiting(&'static str),
    Running,
    Succeeded,
    /// Pod exited with this code; the Job failed beyond its backoff limit.
    Failed(i32),
}

impl JobState {
    fn statuses(&self) -> (Value, Value) {
        let t = "2026-01-01T00:00:00Z";
        let cs = |state: Value| {
            json!([{"name": "flink-client", "image": "flink:2.3.0", "imageID": "", "ready": false,
            "restartCount": 0, "state": state}])
        };
        match self {
            JobState::Pending => (
                json!({"phase": "Pending"}),
                json!({"active": 1, "startTime": t}),
            ),
            JobState::Waiting(reason) => (
                json!({"phase": "Pending", "containerStatuses": cs(json!({"waiting": {"reason": reason, "message": format!("{reason}: flink:2.3.0")}}))}),
                json!({"active": 1, "startTime": t}),
            ),
            JobState::Running => (
                json!({"phase": "Running", "containerStatuses": cs(json!({"running": {"startedAt": t}}))}),
                json!({"active": 1, "startTime": t}),
            ),
            JobState::Succeeded => (
                json!({"phase": "Succeeded", "containerStatuses": cs(json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": t, "finishedAt": t}}))}),
                json!({"succeeded": 1, "startTime": t, "completionTime": t, "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": t},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": t}]}),
            ),
            JobState::Failed(code) => (
                json!({"phase": "Failed", "containerStatuses": cs(json!({"terminated": {"exitCode": code, "reason": "Error", "startedAt": t, "finishedAt": t}}))}),
                json!({"failed": 1, "startTime": t, "conditions": [
                    {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastTransitionTime": t},
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastTransitionTime": t}]}),
            ),
        }
    }
}

/// A JobID of a real, finished Flink job on the stack's cluster, submitted once
/// per test binary with the same `flink run` a pod runs.
pub async fn finished_flink_job_id(stack: &Stack) -> String {
    static ID: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    ID.get_or_init(|| async {
        let id = submit_with_flink_cli(stack, "bounded.py");
        wait_for_flink_state(stack, &id, "FINISHED").await;
        id
    })
    .await
    .clone()
}

/// Polls `GET /jobs/{id}` until the job is in `state`; returns the job's details.
pub async fn wait_for_flink_state(stack: &Stack, id: &str, state: &str) -> Value {
    let http = reqwest::Client::new();
    let url = format!("{}/jobs/{id}", stack.flink_rest_url());
    crate::stack::eventually(
        &format!("Flink job {id} reaches {state}"),
        std::time::Duration::from_secs(90),
        || async {
            let body: Value = http
                .get(&url)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if body["state"] == state {
                Ok(body)
            } else {
                Err(format!("state {}", body["state"]))
            }
        },
    )
    .await
}

/// Submits `script` with `flink run -d` and returns its JobID as soon as the
/// client prints it, then ends the client (a script that waits on its job,
/// like `unbounded.py`, would otherwise hold it for the job's life). The job
/// runs on in the cluster.
pub async fn submit_streaming_with_flink_cli(stack: &Stack, script: &str) -> String {
    submit_streaming_with_options(stack, script, &[]).await
}

/// [`submit_streaming_with_flink_cli`] with `flink run` options before `-py`
/// (`-Dexecution.checkpointing.interval=1s`, ...).
pub async fn submit_streaming_with_options(
    stack: &Stack,
    script: &str,
    options: &[&str],
) -> String {
    use tokio::io::AsyncBufReadExt;
    let flink_home = crate::stack::require("FLINK_HOME");
    let script = crate::lambda::workspace_root()
        .join("tests/jobs")
        .join(script)
        .display()
        .to_string();
    // Both streams in one pipe, wherever the client prints the JobID line.
    let flink = format!("{flink_home}/bin/flink");
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", "exec \"$0\" \"$@\" 2>&1", &flink])
        .args(["run", "-m", &stack.flink_jobmanager(), "-d"])
        .args(options)
        .args(["-py", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("running flink run: {e}"));
    let stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("flink run: no stdout"));
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut seen = String::new();
    let id = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(id) =
                flink_job_sync::rules::podlog::submitted_job_ids(line.as_bytes()).first()
            {
                return Some(id.to_string());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        None
    })
    .await
    .ok()
    .flatten();
    // The client and the Python process it started share the group.
    if let Some(pgid) = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::TERM);
    }
    let _ = child.wait().await;
    id.unwrap_or_else(|| panic!("flink run printed no JobID:\n{seen}"))
}

/// Runs `flink run -m <jobmanager> -d -py tests/jobs/<script>` and returns the
/// JobID it prints.
pub fn submit_with_flink_cli(stack: &Stack, script: &str) -> String {
    let text = run_flink_cli(stack, script);
    flink_job_sync::rules::podlog::submitted_job_ids(text.as_bytes())
        .first()
        .map(|i| i.to_string())
        .unwrap_or_else(|| panic!("flink run printed no JobID:\n{text}"))
}

/// `flink run -m <jobmanager> -d -py tests/jobs/<script>`: its whole output
/// (stdout, then stderr), as a submitting pod's log would hold it. Panics
/// when the command fails.
pub fn run_flink_cli(stack: &Stack, script: &str) -> String {
    let flink_home = crate::stack::require("FLINK_HOME");
    let script = crate::lambda::workspace_root()
        .join("tests/jobs")
        .join(script)
        .display()
        .to_string();
    let out = std::process::Command::new(format!("{flink_home}/bin/flink"))
        .args(["run", "-m", &stack.flink_jobmanager(), "-d", "-py", &script])
        .output()
        .unwrap_or_else(|e| panic!("running flink run: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "flink run -py {script} failed (exit {:?}):\n{text}",
        out.status.code()
    );
    text
}

/// A Flink REST stand-in that misbehaves as told, for the faults the real
/// JobManager cannot be made to show on demand.
pub mod fake_flink {
    use axum::Router;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;

    #[derive(Clone, Copy, Debug)]
    pub enum Fault {
        Status(u16),
        GarbledJson,
    }

    /// Serves every path with the fault; returns its base URL.
    pub async fn start(fault: Fault) -> String {
        let app = Router::new().fallback(get(move || async move {
            match fault {
                Fault::Status(code) => (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    r#"{"errors":["injected"]}"#,
                )
                    .into_response(),
                Fault::GarbledJson => (StatusCode::OK, r#"{"jobs":[{"jid":"ab"#).into_response(),
            }
        }));
        crate::stack::serve_local(app).await
    }

    /// A URL where nothing listens: connection refused.
    pub fn refused() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(1);
        drop(l);
        format!("http://127.0.0.1:{port}")
    }
}

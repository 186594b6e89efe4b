//! The Kubernetes API emulator, driven by kube-rs as flink-job-sync drives a
//! real cluster (runner mode off: objects change only when a client writes).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_emulator::{EmulatorConfig, RunningEmulator, start};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

const NS: &str = "lemo-dev";

async fn emulator() -> (RunningEmulator, Client) {
    let emu = start(EmulatorConfig::default())
        .await
        .expect("emulator starts");
    let client = emu.client().await;
    (emu, client)
}

fn job_json(name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "flink-main-container",
                        "image": "flink:1.20",
                        "command": ["/opt/flink/bin/flink", "run", "-py", "/opt/job.py"],
                        "env": [{"name": "JOB_ID", "value": "42"}],
                    }],
                },
            },
        },
    })
}

fn job(name: &str, app: &str) -> Job {
    serde_json::from_value(job_json(name, app)).expect("valid job")
}

fn pod_for(job: &Job, name: &str, containers: &[&str]) -> Pod {
    let uid = job.uid().expect("job uid");
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"batch.kubernetes.io/controller-uid": uid, "job-name": job.name_any()},
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": job.name_any(), "uid": uid,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": containers.iter().map(|c| json!({"name": c, "image": "flink:1.20"})).collect::<Vec<_>>(),
        },
    }))
    .expect("valid pod")
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn set_log(emu: &RunningEmulator, pod: &str, container: &str, body: &[u8]) {
    let url = format!(
        "{}/emulator/v1/namespaces/{NS}/pods/{pod}/log?container={container}",
        emu.url()
    );
    let res = reqwest::Client::new()
        .put(url)
        .body(body.to_vec())
        .send()
        .await
        .expect("log hook reachable");
    assert_eq!(
        res.status(),
        200,
        "log hook: {}",
        res.text().await.unwrap_or_default()
    );
}

async fn mark_running(pods: &Api<Pod>, name: &str) {
    let status = json!({"status": {"phase": "Running", "containerStatuses": [
        {"name": "flink-main-container", "ready": true, "restartCount": 0, "image": "flink:1.20", "imageID": "",
         "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}
    ]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status patched");
}

#[tokio::test]
async fn jobs_are_listed_with_equality_and_set_based_label_selectors() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    for (name, app) in [
        ("py-a", "flink-python-job"),
        ("py-b", "flink-python-job"),
        ("jar-a", "flink-jar-job"),
    ] {
        jobs.create(&PostParams::default(), &job(name, app))
            .await
            .expect("created");
    }
    let other: Api<Job> = Api::namespaced(client.clone(), "elsewhere");
    other
        .create(&PostParams::default(), &job("py-c", "flink-python-job"))
        .await
        .expect("created");

    let names =
        |l: kube::core::ObjectList<Job>| l.items.iter().map(|j| j.name_any()).collect::<Vec<_>>();
    let eq = jobs
        .list(&ListParams::default().labels("app=flink-python-job"))
        .await
        .expect("list");
    assert_eq!(names(eq), vec!["py-a", "py-b"]);
    let set = jobs
        .list(&ListParams::default().labels("app in (flink-jar-job, nothing)"))
        .await
        .expect("list");
    assert_eq!(names(set), vec!["jar-a"]);
    let notin = jobs
        .list(&ListParams::default().labels("app notin (flink-jar-job),!missing"))
        .await
        .expect("list");
    assert_eq!(names(notin), vec!["py-a", "py-b"]);
    let all: Api<Job> = Api::all(client.clone());
    let across = all
        .list(&ListParams::default().labels("app==flink-python-job"))
        .await
        .expect("list");
    assert_eq!(names(across), vec!["py-c", "py-a", "py-b"]);
    let by_field = all
        .list(&ListParams::default().fields("metadata.name=py-b,metadata.namespace=lemo-dev"))
        .await
        .expect("list");
    assert_eq!(names(by_field), vec!["py-b"]);

    let bad = jobs
        .list(&ListParams::default().labels("app in flink"))
        .await
        .expect_err("bad selector");
    assert_eq!(api_error(bad).0, 400);
    let bad_field = jobs
        .list(&ListParams::default().fields("spec.foo=1"))
        .await
        .expect_err("bad field");
    let (code, _, message) = api_error(bad_field);
    assert_eq!(
        (code, message.as_str()),
        (400, "field label not supported: spec.foo")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn created_jobs_carry_the_defaults_and_labels_the_real_server_adds() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client, NS);
    let mut j = job("defaults", "flink-python-job");
    if let Some(spec) = j.spec.as_mut() {
        spec.backoff_limit = None;
    }
    let created = jobs
        .create(&PostParams::default(), &j)
        .await
        .expect("created");
    let uid = created.uid().expect("uid");
    assert_eq!(uid.len(), 36, "uuid-shaped uid: {uid}");
    assert!(
        created
            .resource_version()
            .expect("rv")
            .parse::<u64>()
            .is_ok()
    );
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.creation_timestamp.is_some());
    let spec = created.spec.clone().expect("spec");
    assert_eq!(spec.backoff_limit, Some(6));
    assert_eq!(spec.completions, Some(1));
    assert_eq!(spec.parallelism, Some(1));
    let selector = spec
        .selector
        .and_then(|s| s.match_labels)
        .expect("generated selector");
    assert_eq!(
        selector,
        BTreeMap::from([(
            "batch.kubernetes.io/controller-uid".to_string(),
            uid.clone()
        )])
    );
    let labels = spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .expect("template labels");
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("controller-uid", uid.as_str()),
        ("batch.kubernetes.io/job-name", "defaults"),
        ("job-name", "defaults"),
        ("app", "flink-python-job"),
    ] {
        assert_eq!(
            labels.get(k).map(String::as_str),
            Some(v),
            "template label {k}"
        );
    }
    let fetched = jobs.get("defaults").await.expect("get");
    assert_eq!(fetched.resource_version(), created.resource_version());

    // generateName gives distinct names with a 5-character suffix.
    let mut g = job("", "flink-python-job");
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let a = jobs
        .create(&PostParams::default(), &g)
        .await
        .expect("generated");
    let b = jobs
        .create(&PostParams::default(), &g)
        .await
        .expect("generated");
    assert_ne!(a.name_any(), b.name_any());
    assert!(
        a.name_any().starts_with("gen-") && a.name_any().len() == 9,
        "{}",
        a.name_any()
    );
    let rv_a: u64 = a
        .resource_version()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    let rv_b: u64 = b
        .resource_version()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    assert!(rv_b > rv_a, "resourceVersion increases: {rv_a} then {rv_b}");
    emu.shutdown().await;
}

#[tokio::test]
async fn errors_are_statuses_with_the_real_codes_and_reasons() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client, NS);
    jobs.create(&PostParams::default(), &job("twice", "a"))
        .await
        .expect("created");
    let (code, reason, message) = api_error(
        jobs.create(&PostParams::default(), &job("twice", "a"))
            .await
            .expect_err("dup"),
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (409, "AlreadyExists", "jobs.batch \"twice\" already exists")
    );

    let (code, reason, message) = api_error(jobs.get("missing").await.expect_err("missing"));
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "jobs.batch \"missing\" not found")
    );

    let (code, reason, message) = api_error(
        jobs.create(&PostParams::default(), &job("Bad_Name", "a"))
            .await
            .expect_err("invalid"),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(
        message.starts_with(
            "Job.batch \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{message}"
    );

    let mut no_containers = job_json("empty", "a");
    no_containers["spec"]["template"]["spec"]["containers"] = json!([]);
    let no_containers: Job = serde_json::from_value(no_containers).expect("job");
    let (code, _, message) = api_error(
        jobs.create(&PostParams::default(), &no_containers)
            .await
            .expect_err("invalid"),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.template.spec.containers: Required value"),
        "{message}"
    );

    let mut always = job_json("always", "a");
    always["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let always: Job = serde_json::from_value(always).expect("job");
    let (code, _, message) = api_error(
        jobs.create(&PostParams::default(), &always)
            .await
            .expect_err("invalid"),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""),
        "{message}"
    );

    let mut nameless = job("x", "a");
    nameless.metadata.name = None;
    let (code, _, message) = api_error(
        jobs.create(&PostParams::default(), &nameless)
            .await
            .expect_err("invalid"),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("metadata.name: Required value"),
        "{message}"
    );

    // Malformed JSON and unknown paths, straight over HTTP.
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/apis/batch/v1/namespaces/{NS}/jobs", emu.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("reachable");
    assert_eq!(res.status(), 400);
    let status: Value = res.json().await.expect("status json");
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("BadRequest"))
    );
    let res = http
        .get(format!("{}/apis/nothing/v1/things", emu.url()))
        .send()
        .await
        .expect("reachable");
    assert_eq!(res.status(), 404);
    let status: Value = res.json().await.expect("status json");
    assert_eq!(status["reason"], "NotFound");
    emu.shutdown().await;
}

#[tokio::test]
async fn the_status_subresource_is_written_apart_from_the_main_resource() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client, NS);
    let created = jobs
        .create(&PostParams::default(), &job("st", "a"))
        .await
        .expect("created");

    let patched = jobs
        .patch_status(
            "st",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 1, "startTime": "2025-01-01T00:00:00Z"}})),
        )
        .await
        .expect("status patched");
    assert_eq!(patched.status.as_ref().and_then(|s| s.active), Some(1));
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );

    let mut replacement = patched.clone();
    if let Some(st) = replacement.status.as_mut() {
        st.active = None;
        st.succeeded = Some(1);
    }
    let replaced = jobs
        .replace_status("st", &PostParams::default(), &replacement)
        .await
        .expect("status replaced");
    assert_eq!(replaced.status.as_ref().and_then(|s| s.succeeded), Some(1));
    assert_eq!(replaced.status.as_ref().and_then(|s| s.active), None);

    // The main resource ignores status changes, and bumps nothing for no-ops.
    let mut main = replaced.clone();
    main.labels_mut().insert("touched".into(), "yes".into());
    if let Some(st) = main.status.as_mut() {
        st.succeeded = Some(99);
    }
    let updated = jobs
        .replace("st", &PostParams::default(), &main)
        .await
        .expect("replaced");
    assert_eq!(
        updated.labels().get("touched").map(String::as_str),
        Some("yes")
    );
    assert_eq!(updated.status.as_ref().and_then(|s| s.succeeded), Some(1));

    // A stale resourceVersion is a conflict.
    let (code, reason, _) = api_error(
        jobs.replace("st", &PostParams::default(), &created)
            .await
            .expect_err("stale"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    // Strategic merge patch merges conditions by type; server-side apply is refused.
    let cond = |ty: &str| json!({"type": ty, "status": "True", "reason": "R", "message": "m"});
    jobs.patch_status(
        "st",
        &PatchParams::default(),
        &Patch::Strategic(json!({"status": {"conditions": [cond("A")]}})),
    )
    .await
    .expect("strategic");
    let both = jobs
        .patch_status(
            "st",
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [cond("B")]}})),
        )
        .await
        .expect("strategic");
    let types: Vec<String> = both
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, vec!["A", "B"]);
    let apply = jobs
        .patch(
            "st",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "batch/v1", "kind": "Job"})),
        )
        .await
        .expect_err("apply unsupported");
    assert_eq!(api_error(apply).0, 415);

    // JSON patch (RFC 6902) over plain HTTP.
    let res = reqwest::Client::new()
        .patch(format!("{}/apis/batch/v1/namespaces/{NS}/jobs/st", emu.url()))
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op":"add","path":"/metadata/annotations","value":{"k":"v"}},{"op":"replace","path":"/metadata/labels/app","value":"b"}]"#)
        .send()
        .await
        .expect("reachable");
    assert_eq!(res.status(), 200);
    let after = jobs.get("st").await.expect("get");
    assert_eq!(after.annotations().get("k").map(String::as_str), Some("v"));
    assert_eq!(after.labels().get("app").map(String::as_str), Some("b"));
    emu.shutdown().await;
}

#[tokio::test]
async fn pod_logs_apply_tail_lines_then_limit_bytes_per_container() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let j = jobs
        .create(&PostParams::default(), &job("logs", "a"))
        .await
        .expect("job");
    let p = pods
        .create(
            &PostParams::default(),
            &pod_for(&j, "logs-abcde", &["flink-main-container"]),
        )
        .await
        .expect("pod");
    let owner = p.owner_references();
    assert_eq!(owner.len(), 1);
    assert_eq!(
        (owner[0].kind.as_str(), owner[0].uid.as_str()),
        ("Job", j.uid().unwrap_or_default().as_str())
    );
    assert_eq!(owner[0].controller, Some(true));

    // Pending: the kubelet has nothing to show yet.
    let (code, reason, message) = api_error(
        pods.logs("logs-abcde", &LogParams::default())
            .await
            .expect_err("pending"),
    );
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        message,
        "container \"flink-main-container\" in pod \"logs-abcde\" is waiting to start: ContainerCreating"
    );

    mark_running(&pods, "logs-abcde").await;
    set_log(
        &emu,
        "logs-abcde",
        "flink-main-container",
        b"line1\nline2\nline3\nline4\n",
    )
    .await;
    let all = pods
        .logs("logs-abcde", &LogParams::default())
        .await
        .expect("log");
    assert_eq!(all, "line1\nline2\nline3\nline4\n");
    let tail = pods
        .logs(
            "logs-abcde",
            &LogParams {
                tail_lines: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("log");
    assert_eq!(tail, "line3\nline4\n");
    let tail_then_limit = pods
        .logs(
            "logs-abcde",
            &LogParams {
                tail_lines: Some(2),
                limit_bytes: Some(8),
                ..Default::default()
            },
        )
        .await
        .expect("log");
    assert_eq!(
        tail_then_limit, "line3\nli",
        "tail first, then the first limitBytes of that"
    );
    let limit_only = pods
        .logs(
            "logs-abcde",
            &LogParams {
                limit_bytes: Some(3),
                ..Default::default()
            },
        )
        .await
        .expect("log");
    assert_eq!(limit_only, "lin");
    let stamped = pods
        .logs(
            "logs-abcde",
            &LogParams {
                tail_lines: Some(1),
                timestamps: true,
                ..Default::default()
            },
        )
        .await
        .expect("log");
    assert!(
        stamped.ends_with("Z line4\n") && stamped.starts_with("20"),
        "{stamped}"
    );

    // Appending through the hook.
    let res = reqwest::Client::new()
        .post(format!(
            "{}/emulator/v1/namespaces/{NS}/pods/logs-abcde/log",
            emu.url()
        ))
        .body("line5")
        .send()
        .await
        .expect("hook");
    assert_eq!(res.status(), 200);
    let tail = pods
        .logs(
            "logs-abcde",
            &LogParams {
                tail_lines: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("log");
    assert_eq!(tail, "line4\nline5");

    let (code, _, message) = api_error(
        pods.logs(
            "logs-abcde",
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("bad container"),
    );
    assert_eq!(
        (code, message.as_str()),
        (400, "container nope is not valid for pod logs-abcde")
    );

    // Several containers: the container must be named.
    pods.create(
        &PostParams::default(),
        &pod_for(&j, "multi", &["flink-main-container", "sidecar"]),
    )
    .await
    .expect("pod");
    mark_running(&pods, "multi").await;
    set_log(&emu, "multi", "sidecar", b"from sidecar\n").await;
    let (code, _, message) = api_error(
        pods.logs("multi", &LogParams::default())
            .await
            .expect_err("ambiguous"),
    );
    assert_eq!(code, 400);
    assert_eq!(
        message,
        "a container name must be specified for pod multi, choose one of: [flink-main-container sidecar]"
    );
    let side = pods
        .logs(
            "multi",
            &LogParams {
                container: Some("sidecar".into()),
                ..Default::default()
            },
        )
        .await
        .expect("log");
    assert_eq!(side, "from sidecar\n");

    // Logs are bytes: non-UTF-8 content comes back untouched over plain HTTP.
    set_log(&emu, "multi", "sidecar", &[0xff, 0xfe, b'\n']).await;
    let raw = reqwest::get(format!(
        "{}/api/v1/namespaces/{NS}/pods/multi/log?container=sidecar",
        emu.url()
    ))
    .await
    .expect("reachable");
    assert_eq!(
        raw.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain")
    );
    assert_eq!(
        raw.bytes().await.expect("body").as_ref(),
        &[0xff, 0xfe, b'\n']
    );

    let (code, _, message) = api_error(
        pods.logs("ghost", &LogParams::default())
            .await
            .expect_err("missing pod"),
    );
    assert_eq!((code, message.as_str()), (404, "pods \"ghost\" not found"));
    emu.shutdown().await;
}

async fn job_with_pods(jobs: &Api<Job>, pods: &Api<Pod>, name: &str) -> Job {
    let j = jobs
        .create(&PostParams::default(), &job(name, "a"))
        .await
        .expect("job");
    for i in 0..2 {
        pods.create(
            &PostParams::default(),
            &pod_for(&j, &format!("{name}-pod{i}"), &["flink-main-container"]),
        )
        .await
        .expect("pod");
    }
    j
}

async fn pods_of(pods: &Api<Pod>, job: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .expect("list pods")
        .items
}

#[tokio::test]
async fn deletion_propagation_decides_what_happens_to_the_pods() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client, NS);

    job_with_pods(&jobs, &pods, "bg").await;
    let deleted = jobs
        .delete("bg", &DeleteParams::background())
        .await
        .expect("deleted");
    assert_eq!(
        deleted.left().map(|j| j.name_any()).as_deref(),
        Some("bg"),
        "200 with the deleted Job"
    );
    assert!(
        pods_of(&pods, "bg").await.is_empty(),
        "background deletion removes the pods"
    );
    assert_eq!(api_error(jobs.get("bg").await.expect_err("gone")).0, 404);

    job_with_pods(&jobs, &pods, "fg").await;
    jobs.delete("fg", &DeleteParams::foreground())
        .await
        .expect("deleted");
    assert!(
        pods_of(&pods, "fg").await.is_empty(),
        "foreground deletion removes the pods"
    );

    job_with_pods(&jobs, &pods, "or").await;
    jobs.delete("or", &DeleteParams::orphan())
        .await
        .expect("deleted");
    let kept = pods_of(&pods, "or").await;
    assert_eq!(kept.len(), 2, "orphan deletion keeps the pods");
    assert!(
        kept.iter().all(|p| p.owner_references().is_empty()),
        "and drops their ownerReferences"
    );

    job_with_pods(&jobs, &pods, "default").await;
    jobs.delete("default", &DeleteParams::default())
        .await
        .expect("deleted");
    assert_eq!(
        pods_of(&pods, "default").await.len(),
        2,
        "batch/v1 Jobs orphan by default"
    );

    let (code, reason, message) = api_error(
        jobs.delete("bg", &DeleteParams::default())
            .await
            .expect_err("missing"),
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "jobs.batch \"bg\" not found")
    );

    pods.delete("or-pod0", &DeleteParams::default())
        .await
        .expect("pod deleted");
    assert_eq!(
        api_error(pods.get("or-pod0").await.expect_err("gone")).0,
        404
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client, NS);
    for i in 0..7 {
        jobs.create(&PostParams::default(), &job(&format!("page-{i}"), "a"))
            .await
            .expect("job");
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(3);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = jobs.list(&lp).await.expect("page");
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|j| j.name_any()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        assert!(pages < 10, "pagination terminates");
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        (0..7).map(|i| format!("page-{i}")).collect::<Vec<_>>()
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn discovery_and_version_answer_like_kubernetes_1_32() {
    let (emu, client) = emulator().await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );
    let groups = client.list_api_groups().await.expect("groups");
    assert!(groups.groups.iter().any(|g| g.name == "batch"));
    let batch = client
        .list_api_group_resources("batch/v1")
        .await
        .expect("batch/v1");
    let jobs = batch
        .resources
        .iter()
        .find(|r| r.name == "jobs")
        .expect("jobs listed");
    assert!(jobs.namespaced && jobs.kind == "Job" && jobs.verbs.contains(&"watch".to_string()));
    assert!(batch.resources.iter().any(|r| r.name == "jobs/status"));
    let core = client.list_core_api_resources("v1").await.expect("v1");
    let pods = core
        .resources
        .iter()
        .find(|r| r.name == "pods")
        .expect("pods listed");
    assert_eq!(pods.short_names.as_deref(), Some(&["po".to_string()][..]));
    assert!(
        core.resources
            .iter()
            .any(|r| r.name == "pods/log" && r.verbs == vec!["get".to_string()])
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn watches_stream_added_modified_and_deleted_events() {
    let (emu, client) = emulator().await;
    let jobs: Api<Job> = Api::namespaced(client, NS);
    let listed = jobs.list(&ListParams::default()).await.expect("list");
    let rv = listed.metadata.resource_version.unwrap_or_default();
    let stream = jobs
        .watch(&WatchParams::default().labels("app=w").timeout(10), &rv)
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    jobs.create(&PostParams::default(), &job("w1", "w"))
        .await
        .expect("job");
    jobs.create(&PostParams::default(), &job("other", "x"))
        .await
        .expect("job");
    jobs.patch_status(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"active": 1}})),
    )
    .await
    .expect("patched");
    jobs.delete("w1", &DeleteParams::background())
        .await
        .expect("deleted");
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(5), stream.try_next())
            .await
            .expect("event in time")
            .expect("no stream error")
            .expect("stream open");
        kinds.push(match ev {
            WatchEvent::Added(j) => format!("ADDED {}", j.name_any()),
            WatchEvent::Modified(j) => format!("MODIFIED {}", j.name_any()),
            WatchEvent::Deleted(j) => format!("DELETED {}", j.name_any()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(kinds, vec!["ADDED w1", "MODIFIED w1", "DELETED w1"]);
    emu.shutdown().await;
}

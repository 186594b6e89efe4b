//! The real functions under AWS SAM, as a user runs them locally:
//! `sam local invoke` and `sam local start-lambda` on the template
//! `sam build` wrote (`scripts/sam-local build`: the `local` environment of
//! samconfig.toml, x86_64), in containers of the stack's private Docker that
//! reach MongoDB, Flink and a Kubernetes API emulator over 127.0.0.1, with the
//! payloads in `events/` and the functions' environment in `--env-vars`.
//!
//! Needs the stack with Docker (`eval "$(scripts/stack up)"`) and the build
//! (`scripts/sam-local build`); without either it fails, saying which and why.

use std::path::PathBuf;

use chrono::Utc;
use flink_job_sync::adapters::store::record::to_bson_date;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams, PostParams};
use mongodb::bson::{Document, doc};
use serde_json::{Value, json};
use test_kit::emulator::{self, EmulatorConfig, kubeconfig_yaml};
use test_kit::lambda::workspace_root;
use test_kit::samlocal::{SamBuild, StartLambda, invoke, require_docker, write_env_vars};
use test_kit::scenario::{JobState, NS, Scenario, finished_flink_job_id};
use test_kit::stack::{Stack, job_names, unique_name};

fn event(name: &str) -> PathBuf {
    workspace_root().join("events").join(name)
}

/// A record as the platform writes it: CREATED, no JobID yet.
fn created(job_id: &str, minutes_ago: i64) -> Document {
    doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": null,
    "submitted_at": to_bson_date(Utc::now() - chrono::Duration::minutes(minutes_ago)),
    "template_id": "tpl", "owner": "team-a"}
}

/// The functions' environment for a local run, given with `--env-vars`:
/// plain values instead of Secrets Manager, no EventBridge (SAM cannot pass
/// `AWS_ENDPOINT_URL` to the container), the kubeconfig inside the mounted
/// code directory.
fn env_vars(stack: &Stack, database: &str, kubeconfig: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MONGODB_URI", stack.mongodb_uri.clone()),
        ("MONGODB_URI_SECRET_ARN", String::new()),
        ("MONGODB_DATABASE", database.to_string()),
        ("FLINK_REST_URL", stack.flink_rest_url()),
        ("FLINK_HISTORY_URL", String::new()),
        ("KUBECONFIG", kubeconfig.to_string()),
        ("KUBECONFIG_SECRET_ARN", String::new()),
        ("K8S_NAMESPACE", NS.to_string()),
        ("K8S_JOB_SELECTOR", "app=flink-python-job".to_string()),
        ("EVENT_BUS_NAME", String::new()),
    ]
}

async fn records(coll: &mongodb::Collection<Document>) -> Vec<Document> {
    use futures::TryStreamExt;
    let mut all: Vec<Document> = coll
        .find(doc! {})
        .await
        .unwrap_or_else(|e| panic!("find: {e}"))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("reading records: {e}"));
    all.sort_by(|a, b| a.get_str("job_id").ok().cmp(&b.get_str("job_id").ok()));
    all
}

fn by_job_id<'a>(all: &'a [Document], job_id: &str) -> &'a Document {
    all.iter()
        .find(|d| d.get_str("job_id").ok() == Some(job_id))
        .unwrap_or_else(|| panic!("record {job_id} is gone: {all:?}"))
}

/// The `would_change` entry of a dry run's answer for `job_id`.
fn would_change<'a>(answer: &'a Value, job_id: &str) -> &'a Value {
    answer["would_change"]
        .as_array()
        .and_then(|a| a.iter().find(|w| w["job_id"] == job_id))
        .unwrap_or_else(|| panic!("{job_id} not in would_change: {answer}"))
}

/// The run happened inside the Lambda emulator: its START, END or REPORT
/// line is in what sam printed. (Not all three are asserted: SAM attaches to
/// the container's output while the function starts and stops waiting for it
/// a second after the answer, so Docker can drop a line written at either
/// moment.)
fn assert_ran_in_the_emulator(stderr: &str) {
    assert!(
        ["START", "END", "REPORT"]
            .iter()
            .any(|l| stderr.contains(&format!("{l} RequestId: "))),
        "a line of the Runtime Interface Emulator expected:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_under_sam_local_invoke_dry_run_changes_nothing_manual_moves_one_scheduled_the_rest() {
    require_docker().await;
    let build = SamBuild::require();
    // Its own database, and an in-process Kubernetes API emulator on 127.0.0.1.
    let s = Scenario::new(&Stack::from_env().flink_rest_url(), &[]).await;
    let database = s.db.name().to_string();

    // The record events/manual-one-job.json names: its pod printed the JobID
    // of a real job that has finished on the stack's Flink.
    let manual: Value = serde_json::from_str(
        &std::fs::read_to_string(event("manual-one-job.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("events/manual-one-job.json: {e}"));
    let manual_id = manual["job_ids"][0]
        .as_str()
        .unwrap_or_else(|| panic!("events/manual-one-job.json: no job_ids[0]"))
        .to_string();
    let flink_id = finished_flink_job_id(&s.stack).await;
    s.insert(created(&manual_id, 5)).await;
    let pod = s.k8s_job(&manual_id, JobState::Succeeded).await;
    s.set_log(
        &pod,
        format!("INFO starting\nJob has been submitted with JobID {flink_id}\n"),
    )
    .await;
    // Another, submitted two hours ago, whose Kubernetes Job never appeared.
    let orphan = "tpl-43-1730444400";
    s.insert(created(orphan, 120)).await;

    let kubeconfig =
        build.place_kubeconfig("SyncFunction", &kubeconfig_yaml(&s.emulator.url(), NS));
    let env = write_env_vars(
        &std::env::temp_dir().join(&database),
        &env_vars(&s.stack, &database, &kubeconfig.container),
    );

    // events/dry-run.json: both would change; nothing is written.
    let before = records(&s.records).await;
    let dry = invoke("SyncFunction", &event("dry-run.json"), &env).await;
    eprintln!("sam local invoke SyncFunction (dry run): {:?}", dry.elapsed);
    let a = &dry.answer;
    assert_eq!(a["dry_run"], true, "{a}");
    assert_eq!(a["records_checked"], 2, "{a}");
    assert_eq!(a["records_changed"], 2, "{a}");
    assert_eq!(a["errors"], json!([]), "{a}");
    assert_eq!(would_change(a, &manual_id)["to"], "FINISHED", "{a}");
    assert_eq!(would_change(a, orphan)["to"], "FAILED", "{a}");
    assert_eq!(
        records(&s.records).await,
        before,
        "a dry run writes nothing"
    );
    assert_ran_in_the_emulator(&dry.stderr);

    // events/manual-one-job.json: that record only, for real.
    let run = invoke("SyncFunction", &event("manual-one-job.json"), &env).await;
    eprintln!("sam local invoke SyncFunction (manual): {:?}", run.elapsed);
    let a = &run.answer;
    assert_eq!(a["dry_run"], false, "{a}");
    assert_eq!(a["records_checked"], 1, "{a}");
    assert_eq!(a["records_changed"], 1, "{a}");
    assert_eq!(a["transitions"], json!({"CREATED->FINISHED": 1}), "{a}");
    assert_eq!(a["errors"], json!([]), "{a}");
    let after = records(&s.records).await;
    let r = by_job_id(&after, &manual_id);
    assert_eq!(r.get_str("status").ok(), Some("FINISHED"), "{r}");
    assert_eq!(
        r.get_str("flink_job_id").ok(),
        Some(flink_id.as_str()),
        "{r}"
    );
    assert_eq!(r.get_str("flink_state").ok(), Some("FINISHED"), "{r}");
    assert!(r.get_datetime("end_time").is_ok(), "{r}");
    assert_eq!(
        by_job_id(&after, orphan),
        by_job_id(&before, orphan),
        "a manual run leaves the records it was not given alone"
    );

    // events/scheduled.json: every non-final record, for real.
    let run = invoke("SyncFunction", &event("scheduled.json"), &env).await;
    eprintln!(
        "sam local invoke SyncFunction (scheduled): {:?}",
        run.elapsed
    );
    let a = &run.answer;
    assert_eq!(a["records_checked"], 1, "{a}");
    assert_eq!(a["transitions"], json!({"CREATED->FAILED": 1}), "{a}");
    let after = records(&s.records).await;
    let r = by_job_id(&after, orphan);
    assert_eq!(r.get_str("status").ok(), Some("FAILED"), "{r}");
    let reason = r.get_str("status_reason").unwrap_or_default();
    assert!(reason.contains("Kubernetes Job not found"), "{reason:?}");
}

/// A Job of the product's label, finished `hours_ago` (or still running).
async fn k8s_job(jobs: &Api<Job>, name: &str, finished_hours_ago: Option<i64>) {
    let labels = json!({"app": "flink-python-job"});
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "flink-client", "image": "flink:2.3.0"}]}}}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    jobs.create(&PostParams::default(), &job)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    let status = match finished_hours_ago {
        None => json!({"active": 1}),
        Some(h) => {
            let t = (Utc::now() - chrono::Duration::hours(h))
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            json!({"succeeded": 1, "completionTime": t,
                "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": t}]})
        }
    };
    jobs.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap_or_else(|e| panic!("status {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_under_sam_local_invoke_dry_run_names_the_old_job_and_deletes_nothing() {
    require_docker().await;
    let build = SamBuild::require();
    let stack = Stack::from_env();
    let emulator = emulator::start(EmulatorConfig::default())
        .await
        .unwrap_or_else(|e| panic!("emulator: {e}"));
    let jobs: Api<Job> = Api::namespaced(emulator.client().await, NS);
    k8s_job(&jobs, "old-done", Some(48)).await;
    k8s_job(&jobs, "recent-done", Some(2)).await;
    k8s_job(&jobs, "still-running", None).await;
    let database = unique_name("fjs_sam_cleanup");
    stack
        .records(&database)
        .await
        .insert_one(doc! {"job_id": "old-done", "status": "FINISHED",
        "flink_job_id": "0123456789abcdef0123456789abcdef"})
        .await
        .unwrap_or_else(|e| panic!("insert: {e}"));

    let kubeconfig =
        build.place_kubeconfig("CleanupFunction", &kubeconfig_yaml(&emulator.url(), NS));
    let env = write_env_vars(
        &std::env::temp_dir().join(&database),
        &env_vars(&stack, &database, &kubeconfig.container),
    );
    let run = invoke("CleanupFunction", &event("dry-run.json"), &env).await;
    eprintln!(
        "sam local invoke CleanupFunction (dry run): {:?}",
        run.elapsed
    );
    let a = &run.answer;
    assert_eq!(a["dry_run"], true, "{a}");
    assert_eq!(a["namespace"], NS, "{a}");
    assert_eq!(a["jobs_seen"], 3, "{a}");
    assert_eq!(
        a["deleted"],
        json!(["old-done"]),
        "what a real run would delete: {a}"
    );
    assert_eq!(a["kept"]["too_recent"], 1, "{a}");
    assert_eq!(a["kept"]["not_finished"], 1, "{a}");
    assert_eq!(a["errors"], json!([]), "{a}");
    assert_ran_in_the_emulator(&run.stderr);
    assert_eq!(
        job_names(&jobs).await,
        ["old-done", "recent-done", "still-running"],
        "a dry run deletes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_answers_a_dry_run_at_the_sam_local_start_lambda_endpoint() {
    require_docker().await;
    let build = SamBuild::require();
    let stack = Stack::from_env();
    let emulator = emulator::start(EmulatorConfig::default())
        .await
        .unwrap_or_else(|e| panic!("emulator: {e}"));
    let database = unique_name("fjs_sam_endpoint");
    let coll = stack.records(&database).await;
    coll.insert_one(created("tpl-44-1730444400", 120))
        .await
        .unwrap_or_else(|e| panic!("insert: {e}"));
    let before = records(&coll).await;

    let kubeconfig = build.place_kubeconfig("SyncFunction", &kubeconfig_yaml(&emulator.url(), NS));
    let log_dir = std::env::temp_dir().join(&database);
    let env = write_env_vars(
        &log_dir,
        &env_vars(&stack, &database, &kubeconfig.container),
    );
    let server = StartLambda::start(&env, &log_dir).await;
    let started = std::time::Instant::now();
    let a = server
        .invoke("SyncFunction", &json!({"dry_run": true}))
        .await;
    eprintln!(
        "POST {}/2015-03-31/functions/SyncFunction/invocations (dry run): {:?}",
        server.endpoint,
        started.elapsed()
    );
    let output = server.output();
    server.stop().await;
    assert_eq!(a["dry_run"], true, "{a}\n{output}");
    assert_eq!(a["records_changed"], 1, "{a}\n{output}");
    assert_eq!(would_change(&a, "tpl-44-1730444400")["to"], "FAILED", "{a}");
    assert_eq!(records(&coll).await, before, "a dry run writes nothing");
}

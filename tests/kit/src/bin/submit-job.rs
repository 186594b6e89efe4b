//! `scripts/submit`: puts a Flink Python job on the running local stack the
//! way the data platform does, so a person can watch sync follow it: a
//! record in `flink_jobs` (CREATED, no JobID), then a Kubernetes Job whose pod
//! runs `flink run -py /opt/jobs/SCRIPT` against the stack's Flink.
//!
//! ```text
//! scripts/submit SCRIPT [--attached] [--job-id NAME] [--database DB] [--namespace NS]
//! ```
//! SCRIPT is a file in `tests/jobs/` (the emulator maps `/opt/jobs` there).

use std::process::ExitCode;

use flink_job_sync::rules::model::is_dns_label;
use mongodb::bson::Document;
use test_kit::fleet::{Submission, k8s_name, submit};
use test_kit::lambda::workspace_root;
use test_kit::stack::Stack;

const USAGE: &str =
    "usage: scripts/submit SCRIPT [--attached] [--job-id NAME] [--database DB] [--namespace NS]
  SCRIPT       a Flink Python script in tests/jobs/ (e.g. bounded.py)
  --attached   flink run without -d: the client, and so the pod, waits for the job
  --job-id     the record's job_id and the Kubernetes Job's name (default: from the script's name)
  --database   MongoDB database (default: $MONGODB_DATABASE, else lemo_recommender, as sync)
  --namespace  Kubernetes namespace (default: $K8S_NAMESPACE, else lemo-dev, as sync)";

struct Args {
    script: String,
    attached: bool,
    job_id: Option<String>,
    database: String,
    namespace: String,
}

fn parse_args() -> Result<Args, String> {
    let env_or = |k: &str, d: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| d.to_string())
    };
    let mut args = Args {
        script: String::new(),
        attached: false,
        job_id: None,
        database: env_or("MONGODB_DATABASE", "lemo_recommender"),
        namespace: env_or("K8S_NAMESPACE", "lemo-dev"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--attached" => args.attached = true,
            "--job-id" => args.job_id = Some(value("--job-id")?),
            "--database" => args.database = value("--database")?,
            "--namespace" => args.namespace = value("--namespace")?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}\n{USAGE}")),
            s if args.script.is_empty() => args.script = s.to_string(),
            s => return Err(format!("one SCRIPT only, got a second: {s:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// The scripts a pod can run: the `.py` files in `tests/jobs/`.
fn known_scripts() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("tests/jobs"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".py"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    let scripts = known_scripts();
    if !scripts.contains(&args.script) {
        return Err(format!(
            "SCRIPT {:?} is not in tests/jobs/ (there: {})\n{USAGE}",
            args.script,
            scripts.join(", ")
        ));
    }
    let job_id = match args.job_id {
        Some(id) => id,
        None => k8s_name(&args.script.trim_end_matches(".py").replace('_', "-")),
    };
    // A Job's name is also its pods' `job-name` label: a DNS label.
    if !is_dns_label(&job_id) {
        return Err(format!(
            "--job-id {job_id:?} is not a Kubernetes name (lowercase letters, digits and '-', at most 63)"
        ));
    }
    if !is_dns_label(&args.namespace) {
        return Err(format!(
            "--namespace {:?} is not a Kubernetes namespace name",
            args.namespace
        ));
    }
    for var in ["MONGODB_URI", "FLINK_JOBMANAGER", "KUBECONFIG"] {
        if std::env::var(var).map_or(true, |v| v.is_empty()) {
            return Err(format!(
                "{var} is not set: start the local stack first: eval \"$(scripts/stack up)\""
            ));
        }
    }
    let stack = Stack::from_env();
    let records = stack
        .mongo_client()
        .await
        .database(&args.database)
        .collection::<Document>("flink_jobs");
    // Nothing half done: a name already taken is refused before anything is
    // written, so a failed submit never leaves a record without its Job.
    let existing = records
        .count_documents(mongodb::bson::doc! {"job_id": &job_id})
        .await
        .map_err(|e| format!("MongoDB at MONGODB_URI: {e}"))?;
    if existing > 0 {
        return Err(format!(
            "a record with job_id {job_id:?} already exists in {}.flink_jobs",
            args.database
        ));
    }
    let kube = stack.kube_client().await;
    let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> =
        kube::Api::namespaced(kube.clone(), &args.namespace);
    match jobs.get_opt(&job_id).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Err(format!(
                "a Kubernetes Job {job_id:?} already exists in namespace {}",
                args.namespace
            ));
        }
        Err(e) => return Err(format!("the Kubernetes API at KUBECONFIG: {e}")),
    }
    let submission = Submission {
        job_id: job_id.clone(),
        script: args.script.clone(),
        detached: !args.attached,
    };
    submit(
        &stack.kube_client().await,
        &records,
        &args.namespace,
        &stack.flink_jobmanager(),
        &submission,
    )
    .await;
    let mode = if args.attached {
        "flink run, the client waits"
    } else {
        "flink run -d"
    };
    println!(
        "submitted {} as Kubernetes Job {job_id} in namespace {} ({mode})",
        args.script, args.namespace
    );
    println!(
        "record {job_id}: status CREATED in {}.flink_jobs",
        args.database
    );
    println!(
        "watch it:  kubectl get jobs -n {} -l app=flink-python-job",
        args.namespace
    );
    println!(
        "sync it:   see \"Running the functions locally\" in the README (payload {{\"job_ids\": [\"{job_id}\"]}})"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("submit-job: {e}");
            ExitCode::from(2)
        }
    }
}

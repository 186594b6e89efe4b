//! The demo: on the local stack, the data platform submits four Flink Python
//! jobs (records in `flink_jobs`, Kubernetes Jobs whose pods run `flink run`),
//! and the real `sync` Lambda function, run by `cargo lambda watch`, is invoked
//! on a short schedule until every record tells the truth. Run it with
//! `scripts/demo`, which starts and stops the stack around it.

use std::time::{Duration, Instant};

use mongodb::bson::{Bson, doc};
use test_kit::fleet::{Submission, cancel_flink_job, k8s_name, submit};
use test_kit::lambda::{LambdaWatch, workspace_root};
use test_kit::stack::{Stack, unique_name};

const NS: &str = "lemo-dev";
const TICK: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() {
    let stack = Stack::from_env();
    let database =
        std::env::var("DEMO_DATABASE").unwrap_or_else(|_| unique_name("lemo_recommender_demo"));
    let kube = stack.kube_client().await;
    let coll = stack.records(&database).await;

    let fleet = [
        Submission {
            job_id: k8s_name("demo-bounded"),
            script: "bounded.py".into(),
            detached: true,
        },
        Submission {
            job_id: k8s_name("demo-fails-at-runtime"),
            script: "fails_at_runtime.py".into(),
            detached: true,
        },
        Submission {
            job_id: k8s_name("demo-fails-before-submit"),
            script: "fails_before_submit.py".into(),
            detached: true,
        },
        Submission {
            job_id: k8s_name("demo-streaming"),
            script: "unbounded.py".into(),
            detached: false,
        },
    ];
    println!(
        "== submitting {} jobs (database {database}, namespace {NS})",
        fleet.len()
    );
    for s in &fleet {
        submit(&kube, &coll, NS, &stack.flink_jobmanager(), s).await;
        println!(
            "   {:<40} {} ({})",
            s.job_id,
            s.script,
            if s.detached {
                "flink run -d"
            } else {
                "flink run, client waits"
            }
        );
    }

    let env = vec![
        ("MONGODB_URI".to_string(), stack.mongodb_uri.clone()),
        ("MONGODB_DATABASE".to_string(), database.clone()),
        ("FLINK_REST_URL".to_string(), stack.flink_rest_url()),
        ("KUBECONFIG".to_string(), stack.kubeconfig.clone()),
        ("K8S_NAMESPACE".to_string(), NS.to_string()),
    ];
    let log_dir = std::env::temp_dir().join(&database);
    println!("== starting the sync function under cargo lambda watch");
    let watch = LambdaWatch::start(&env, &log_dir);
    let event = workspace_root().join("events/scheduled.json");
    let streaming = &fleet[3].job_id;
    let started = Instant::now();
    let mut cancelled = false;
    loop {
        tokio::time::sleep(TICK).await;
        let summary = match watch.invoke_file("sync", &event) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sync invocation failed: {e}");
                continue;
            }
        };
        println!(
            "\n== t+{:>3}s sync: checked {} changed {} transitions {}",
            started.elapsed().as_secs(),
            summary["records_checked"],
            summary["records_changed"],
            summary["transitions"]
        );
        let mut all_final = true;
        for s in &fleet {
            let r = coll
                .find_one(doc! {"job_id": &s.job_id})
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            let status = r.get_str("status").unwrap_or("?");
            all_final &= matches!(status, "FINISHED" | "FAILED" | "CANCELLED");
            println!(
                "   {:<40} {:<10} flink_job_id={}",
                s.job_id,
                status,
                r.get_str("flink_job_id").unwrap_or("-")
            );
            if &s.job_id == streaming && status == "RUNNING" && !cancelled {
                let id = r.get_str("flink_job_id").unwrap_or_default().to_string();
                println!("   -> the streaming job runs; cancelling it through the Flink REST API");
                cancel_flink_job(&stack.flink_rest_url(), &id).await;
                cancelled = true;
            }
        }
        if all_final || started.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    println!("\n== final records");
    for s in &fleet {
        if let Ok(Some(r)) = coll
            .find_one(doc! {"job_id": &s.job_id})
            .projection(doc! {"_id": 0, "job_id": 1, "status": 1, "flink_job_id": 1, "flink_state": 1,
                "start_time": 1, "end_time": 1, "duration": 1, "status_reason": 1, "status_history": 1})
            .await
        {
            let json = serde_json::to_string_pretty(&plain(&Bson::Document(r))).unwrap_or_default();
            println!("{json}");
        }
    }
}

/// A record as a person reads it: dates as RFC 3339, numbers as numbers.
fn plain(v: &Bson) -> serde_json::Value {
    match v {
        Bson::DateTime(d) => {
            serde_json::Value::String(d.try_to_rfc3339_string().unwrap_or_default())
        }
        Bson::Document(d) => {
            serde_json::Value::Object(d.iter().map(|(k, v)| (k.clone(), plain(v))).collect())
        }
        Bson::Array(a) => serde_json::Value::Array(a.iter().map(plain).collect()),
        other => other.clone().into_relaxed_extjson(),
    }
}

//! End to end: real Flink Python jobs submitted as Kubernetes Jobs (emulator
//! in runner mode, `flink run` against the real Flink cluster), synced by the
//! real `sync` binary under `cargo lambda watch`, invoked with `cargo lambda
//! invoke` and the scheduled-event payload in `events/`.

use std::time::Duration;

use mongodb::bson::{Document, doc};
use test_kit::fleet::{Submission, cancel_flink_job, k8s_name, submit};
use test_kit::lambda::{LambdaWatch, workspace_root};
use test_kit::stack::{Stack, eventually, unique_name};

const NS: &str = "lemo-dev";

async fn record(coll: &mongodb::Collection<Document>, job_id: &str) -> Document {
    coll.find_one(doc! {"job_id": job_id})
        .await
        .unwrap_or_else(|e| panic!("find {job_id}: {e}"))
        .unwrap_or_else(|| panic!("record {job_id} is gone"))
}

#[tokio::test]
async fn real_jobs_reach_their_true_status_through_the_lambda_function() {
    let stack = Stack::from_env();
    let database = unique_name("fjs_e2e");
    let kube = stack.kube_client().await;
    let coll = stack.records(&database).await;

    let bounded = Submission {
        job_id: k8s_name("e2e-bounded"),
        script: "bounded.py".into(),
        detached: true,
    };
    let runtime_fail = Submission {
        job_id: k8s_name("e2e-runtime-fail"),
        script: "fails_at_runtime.py".into(),
        detached: true,
    };
    let early_fail = Submission {
        job_id: k8s_name("e2e-early-fail"),
        script: "fails_before_submit.py".into(),
        detached: true,
    };
    let streaming = Submission {
        job_id: k8s_name("e2e-streaming"),
        script: "unbounded.py".into(),
        detached: false,
    };
    for s in [&bounded, &runtime_fail, &early_fail, &streaming] {
        submit(&kube, &coll, NS, &stack.flink_jobmanager(), s).await;
    }

    // As deployed: the MongoDB URI and the kubeconfig come from Secrets
    // Manager (moto here), not from plain variables.
    let (mongo_arn, kube_arn) = store_secrets(&stack, &database).await;
    let mut env: Vec<(String, String)> = vec![
        ("MONGODB_URI".into(), String::new()),
        ("MONGODB_URI_SECRET_ARN".into(), mongo_arn),
        ("KUBECONFIG".into(), "/nonexistent/kubeconfig".into()),
        ("KUBECONFIG_SECRET_ARN".into(), kube_arn),
        ("MONGODB_DATABASE".into(), database.clone()),
        ("FLINK_REST_URL".into(), stack.flink_rest_url()),
        ("K8S_NAMESPACE".into(), NS.into()),
        ("RUST_LOG".into(), "info".into()),
        ("EVENT_BUS_NAME".into(), "default".into()),
    ];
    // The functions' AWS clients reach the stack's moto only, as the tests' do.
    env.push(("AWS_ENDPOINT_URL".into(), test_kit::aws::endpoint()));
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        env.push((var.into(), test_kit::stack::require(var)));
    }
    let log_dir = std::env::temp_dir().join(&database);
    let watch = LambdaWatch::start(&env, &log_dir);
    let scheduled = workspace_root().join("events/scheduled.json");

    // A misspelt key is refused by name before anything is read or written:
    // it must never turn a dry run into a real run.
    for (function, payload, key) in [
        ("sync", serde_json::json!({"dryRun": true}), "dryRun"),
        ("sync", serde_json::json!({"jobids": ["x"]}), "jobids"),
        ("cleanup", serde_json::json!({"dryrun": true}), "dryrun"),
    ] {
        // `cargo lambda invoke` prints a function error as text, not JSON.
        let answer = match watch.invoke(function, &payload) {
            Ok(v) => panic!("{function} accepted {payload}: {v}"),
            Err(e) => e,
        };
        assert!(
            answer.contains("InputError")
                && answer.contains(&format!("{key:?}"))
                && answer.contains("\"dry_run\""),
            "{function}: names the key and the accepted ones: {answer}"
        );
    }
    let runs = stack
        .mongo_client()
        .await
        .database(&database)
        .collection::<Document>("flink_job_sync_runs");
    assert_eq!(
        runs.count_documents(doc! {}).await.expect("count runs"),
        0,
        "a refused payload starts no run"
    );
    for s in [&bounded, &runtime_fail, &early_fail, &streaming] {
        assert_eq!(
            record(&coll, &s.job_id).await.get_str("status").ok(),
            Some("CREATED"),
            "a refused payload changes no record"
        );
    }

    let expect = |doc: &Document, status: &str| doc.get_str("status").ok() == Some(status);
    eventually(
        "the three bounded submissions reach a final status",
        Duration::from_secs(240),
        || async {
            let summary = watch.invoke_file("sync", &scheduled)?;
            let mut seen = Vec::new();
            for (s, want) in [
                (&bounded, "FINISHED"),
                (&runtime_fail, "FAILED"),
                (&early_fail, "FAILED"),
            ] {
                let r = record(&coll, &s.job_id).await;
                seen.push(format!("{}={:?}", s.job_id, r.get_str("status")));
                if !expect(&r, want) {
                    return Err(format!("{seen:?}; last summary {summary}"));
                }
            }
            Ok(())
        },
    )
    .await;

    let r = record(&coll, &bounded.job_id).await;
    let start = r
        .get_datetime("start_time")
        .expect("start_time")
        .timestamp_millis();
    let end = r
        .get_datetime("end_time")
        .expect("end_time")
        .timestamp_millis();
    assert!(end >= start, "{r}");
    assert!(
        (r.get_f64("duration").expect("duration") - (end - start) as f64 / 1000.0).abs() < 1e-9
    );
    assert_eq!(r.get_str("flink_state").ok(), Some("FINISHED"));

    let r = record(&coll, &runtime_fail.job_id).await;
    let reason = r.get_str("status_reason").unwrap_or_default();
    assert!(
        reason.contains("NumberFormatException"),
        "Flink's root cause expected, got {reason:?}"
    );
    assert!(r.get_str("flink_job_id").is_ok());

    // `flink run` exits 31 before submitting; what it printed last is kept.
    // (PyFlink sometimes loses the Python traceback when the script dies
    // before its gateway connects, so the tail is checked, not its words.)
    let r = record(&coll, &early_fail.job_id).await;
    let reason = r.get_str("status_reason").unwrap_or_default();
    assert!(reason.contains("BackoffLimitExceeded"), "{reason:?}");
    assert!(reason.contains("exit code 31"), "{reason:?}");
    let tail = reason.split("log tail:\n").nth(1).unwrap_or_default();
    assert!(
        !tail.trim().is_empty(),
        "the log tail expected, got {reason:?}"
    );
    assert!(
        r.get("flink_job_id")
            .is_some_and(|v| v == &mongodb::bson::Bson::Null)
    );

    // The streaming job's client keeps its pod running: RUNNING all the same.
    let flink_id = eventually(
        "the streaming submission is RUNNING",
        Duration::from_secs(120),
        || async {
            watch.invoke_file("sync", &scheduled)?;
            let r = record(&coll, &streaming.job_id).await;
            match (r.get_str("status"), r.get_str("flink_job_id")) {
                (Ok("RUNNING"), Ok(id)) => Ok(id.to_string()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    cancel_flink_job(&stack.flink_rest_url(), &flink_id).await;
    eventually(
        "the cancelled streaming job is CANCELLED",
        Duration::from_secs(120),
        || async {
            watch.invoke_file("sync", &scheduled)?;
            let r = record(&coll, &streaming.job_id).await;
            if expect(&r, "CANCELLED") {
                Ok(())
            } else {
                Err(format!("{:?}", r.get_str("status")))
            }
        },
    )
    .await;
    let r = record(&coll, &streaming.job_id).await;
    let history: Vec<String> = r
        .get_array("status_history")
        .expect("history")
        .iter()
        .filter_map(|h| {
            h.as_document()
                .and_then(|d| d.get_str("to").ok())
                .map(str::to_string)
        })
        .collect();
    assert_eq!(history, ["RUNNING", "CANCELLED"]);

    // A quiet fleet: one more run changes nothing.
    let summary = watch
        .invoke_file("sync", &scheduled)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary["records_checked"], 0, "{summary}");
    assert_eq!(
        summary["events_pending"], 0,
        "every transition was announced: {summary}"
    );
    assert!(
        watch.output().contains("\"CloudWatchMetrics\""),
        "an EMF metrics line per run"
    );
    assert!(
        watch.output().contains("\"message\":\"status changed\""),
        "JSON logs expected from the function"
    );

    // The streaming submitter ran `flink run` without `-d`: its client
    // notices the cancellation on its own schedule, and only then does its
    // Kubernetes Job end. Cleanup must see every Job finished, so wait for it.
    let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> = kube::Api::namespaced(kube.clone(), NS);
    eventually(
        "the streaming submitter's Kubernetes Job ends after the cancellation",
        Duration::from_secs(120),
        || async {
            let job = jobs
                .get(&streaming.job_id)
                .await
                .map_err(|e| format!("get Job {}: {e}", streaming.job_id))?;
            let ended = job
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                    })
                });
            if ended {
                Ok(())
            } else {
                Err(format!("{:?}", job.status))
            }
        },
    )
    .await;

    // Cleanup, invoked the same way: everything here finished minutes ago.
    let dry = workspace_root().join("events/dry-run.json");
    let cleanup = watch
        .invoke_file("cleanup", &dry)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cleanup["dry_run"], true, "{cleanup}");
    assert!(cleanup["jobs_seen"].as_u64().unwrap_or(0) >= 4, "{cleanup}");
    assert_eq!(
        cleanup["deleted"],
        serde_json::json!([]),
        "nothing is old enough: {cleanup}"
    );
    assert!(
        cleanup["kept"]["too_recent"].as_u64().unwrap_or(0) >= 4,
        "{cleanup}"
    );
    let output = watch.output();
    let kube_token = std::fs::read_to_string(&stack.kubeconfig).unwrap_or_default();
    let token = kube_token
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .map(str::trim);
    assert!(
        !output.contains(stack.mongodb_uri.as_str()),
        "the MongoDB URI must not reach the logs"
    );
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        assert!(
            !output.contains(token),
            "the Kubernetes token must not reach the logs"
        );
    }
}

async fn store_secrets(stack: &Stack, database: &str) -> (String, String) {
    let sm = aws_sdk_secretsmanager::Client::new(&test_kit::aws::sdk_config());
    let kubeconfig =
        std::fs::read_to_string(&stack.kubeconfig).unwrap_or_else(|e| panic!("kubeconfig: {e}"));
    let mut arns = Vec::new();
    for (name, value) in [
        ("mongodb-uri", stack.mongodb_uri.clone()),
        ("kubeconfig", kubeconfig),
    ] {
        let out = sm
            .create_secret()
            .name(format!("flink-job-sync/{database}/{name}"))
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating a secret in moto (AWS_ENDPOINT_URL): {e:?}"));
        arns.push(out.arn().unwrap_or_default().to_string());
    }
    (arns[0].clone(), arns[1].clone())
}

/// A cold start that fails is reported through the Runtime API's init error
/// endpoint: the invoker gets the reason at once, not after its timeout.
#[tokio::test]
async fn a_failed_cold_start_answers_the_invoker_at_once_with_the_reason() {
    let stack = Stack::from_env();
    let log_dir = std::env::temp_dir().join(unique_name("fjs_init_error"));
    let healthy = |var: &str, value: &str| -> Vec<(String, String)> {
        let mut env = vec![
            ("MONGODB_URI".to_string(), stack.mongodb_uri.clone()),
            ("FLINK_REST_URL".to_string(), stack.flink_rest_url()),
            ("KUBECONFIG".to_string(), stack.kubeconfig.clone()),
        ];
        env.retain(|(k, _)| k != var);
        env.push((var.to_string(), value.to_string()));
        env
    };
    let payload = serde_json::json!({"dry_run": true});
    for (function, var, value, error_type, names) in [
        (
            "sync",
            "FLINK_REST_URL",
            "flink-jobmanager:8081",
            "ConfigError",
            "FLINK_REST_URL",
        ),
        // Cleanup reads only its own settings (no Flink's): its own bad one.
        (
            "cleanup",
            "CLEANUP_MIN_AGE_HOURS",
            "lots",
            "ConfigError",
            "CLEANUP_MIN_AGE_HOURS",
        ),
        (
            "sync",
            "KUBECONFIG",
            "/nonexistent/kubeconfig",
            "KubernetesError",
            "kubeconfig",
        ),
        (
            "cleanup",
            "KUBECONFIG",
            "/nonexistent/kubeconfig",
            "KubernetesError",
            "kubeconfig",
        ),
    ] {
        // One emulator per function, as on AWS: cargo-lambda's watch can
        // lose a second function's init error while it reaps the first.
        let watch = LambdaWatch::start(&healthy(var, value), &log_dir);
        let answer = watch
            .invoke(function, &payload)
            .unwrap_or_else(|e| panic!("{function}: {e}"));
        let message = answer["errorMessage"].as_str().unwrap_or_default();
        assert_eq!(answer["errorType"], error_type, "{function}: {answer}");
        assert!(
            message.starts_with("cold start failed") && message.contains(names),
            "{function}: the reason is in the answer: {message}"
        );
    }
    // A setting only sync reads cannot stop cleanup.
    let watch = LambdaWatch::start(
        &healthy("FLINK_REST_URL", "flink-jobmanager:8081"),
        &log_dir,
    );
    let answer = watch
        .invoke("cleanup", &payload)
        .unwrap_or_else(|e| panic!("cleanup: {e}"));
    assert_eq!(
        answer["dry_run"], true,
        "cleanup starts without Flink's settings: {answer}"
    );
}

/// `scripts/submit` (the `submit-job` binary) does what the data platform does:
/// a CREATED record, then a Kubernetes Job running `flink run -d -py`.
#[tokio::test]
async fn submit_puts_a_flink_job_and_its_record_on_the_stack() {
    let stack = Stack::from_env();
    let database = unique_name("fjs_submit");
    let bin = test_kit::lambda::built_binary("flink-job-sync-test-kit", "submit-job");
    let submit = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .env("MONGODB_DATABASE", &database)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running {} (cargo build -p flink-job-sync-test-kit --bin submit-job): {e}",
                    bin.display()
                )
            })
    };
    let coll = stack.records(&database).await;

    let refused = submit(&["no_such_job.py"]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bounded.py"),
        "lists the scripts there are: {err}"
    );
    let bad_name = submit(&["bounded.py", "--job-id", "Not_A_Name"]);
    assert_eq!(bad_name.status.code(), Some(2));
    assert_eq!(
        coll.count_documents(doc! {}).await.expect("count"),
        0,
        "nothing written"
    );
    let jobs: kube::Api<k8s_openapi::api::batch::v1::Job> =
        kube::Api::namespaced(stack.kube_client().await, NS);

    let job_id = k8s_name("submitted");
    let out = submit(&["bounded.py", "--job-id", &job_id]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains(&job_id), "{printed}");
    let r = record(&coll, &job_id).await;
    assert_eq!(r.get_str("status").ok(), Some("CREATED"));
    assert_eq!(r.get("flink_job_id"), Some(&mongodb::bson::Bson::Null));
    let again = submit(&["bounded.py", "--job-id", &job_id]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a name already taken is refused"
    );
    assert_eq!(
        coll.count_documents(doc! {"job_id": &job_id})
            .await
            .expect("count"),
        1,
        "and writes no second record"
    );
    let job = jobs
        .get(&job_id)
        .await
        .unwrap_or_else(|e| panic!("the Kubernetes Job {job_id}: {e}"));
    let args = job
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.args)
        .unwrap_or_default();
    assert!(
        args.contains(&"-d".to_string()) && args.contains(&"/opt/jobs/bounded.py".to_string()),
        "{args:?}"
    );
}

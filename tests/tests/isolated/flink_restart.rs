//! The real JobManager stopped in the middle of a sync run and started again.
//! The run is held in its Kubernetes phase (the API's answers held back by a
//! fault proxy) until the stack's JobManager has stopped, so the run's Flink
//! calls meet a cluster that is gone. Nothing may be judged from that: the streaming job's
//! record keeps RUNNING with a `sync_error` and no miss. After the restart the
//! session cluster (no HA) has really lost the job: only then, after the
//! configured number of trusted misses, is the record FAILED, once.
//!
//! Alone while it runs (see the binary's docs), so no other test shares the
//! cluster while it restarts; it waits for the TaskManager to register again
//! before it ends.

use std::time::Duration;

use flink_job_sync::adapters::k8s::Kubernetes;
use flink_job_sync::adapters::store::record::to_bson_date;
use mongodb::bson::doc;
use test_kit::faultproxy::{Fault, FaultProxy};
use test_kit::faultrig::history;
use test_kit::scenario::{
    JobState, NS, Scenario, submit_streaming_with_flink_cli, wait_for_flink_state,
};
use test_kit::stack::{Stack, eventually, require};

async fn jobmanager(action: &str) {
    let flink_home = require("FLINK_HOME");
    // FLINK_CONF_DIR, FLINK_PID_DIR and FLINK_LOG_DIR come from the stack's
    // environment, so this is the stack's own JobManager.
    for var in ["FLINK_CONF_DIR", "FLINK_PID_DIR", "FLINK_LOG_DIR"] {
        require(var);
    }
    // The daemon it starts would hold captured pipes open for its whole life:
    // its output goes to the stack's log directory instead.
    let status = tokio::process::Command::new(format!("{flink_home}/bin/jobmanager.sh"))
        .arg(action)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap_or_else(|e| panic!("jobmanager.sh {action}: {e}"));
    assert!(status.success(), "jobmanager.sh {action}: {status}");
}

/// Starts the stack's JobManager again when dropped, on every way out of
/// the test (a failed assertion included), so no later suite meets a
/// stopped Flink; disarmed once the test has started it itself.
struct StartAgain {
    armed: bool,
}

impl Drop for StartAgain {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let flink_home = require("FLINK_HOME");
        let status = std::process::Command::new(format!("{flink_home}/bin/jobmanager.sh"))
            .arg("start")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        eprintln!("the test stopped early: JobManager started again ({status:?})");
    }
}

async fn overview(stack: &Stack) -> Option<serde_json::Value> {
    let resp = reqwest::Client::new()
        .get(format!("{}/overview", stack.flink_rest_url()))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

#[tokio::test]
async fn a_jobmanager_stopped_mid_run_and_restarted_misjudges_nothing() {
    let _alone = crate::alone().await;
    let stack = Stack::from_env();
    let streaming = submit_streaming_with_flink_cli(&stack, "unbounded.py").await;
    wait_for_flink_state(&stack, &streaming, "RUNNING").await;

    let mut s = Scenario::new(
        &stack.flink_rest_url(),
        &[
            ("FLINK_MISSING_THRESHOLD", "2"),
            ("FLINK_TIMEOUT_MS", "2000"),
            ("K8S_TIMEOUT_MS", "20000"),
        ],
    )
    .await;
    s.insert(
        doc! {"job_id": "stream-1", "status": "RUNNING", "flink_job_id": &streaming,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    // A record still waiting for its JobID puts the run through Kubernetes
    // first, where the slow proxy holds it.
    s.insert(
        doc! {"job_id": "wait-1", "status": "CREATED", "flink_job_id": null,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let pod = s.k8s_job("wait-1", JobState::Running).await;
    s.set_log(&pod, "starting\n").await;
    let k8s = FaultProxy::in_front_of(&s.emulator.url()).await;
    let url = k8s.url_for(&s.emulator.url());
    let mut kc = kube::Config::new(url.parse().unwrap_or_else(|e| panic!("{url}: {e}")));
    kc.default_namespace = NS.to_string();
    kc.read_timeout = Some(Duration::from_secs(20));
    let client = kube::Client::try_from(kc).unwrap_or_else(|e| panic!("{e}"));
    s.syncer
        .set_kubernetes(Kubernetes::new(client, &s.cfg.kube));
    k8s.set(Fault::Hold).await;

    let req = flink_job_sync::runs::sync::SyncRequest::default();
    // Armed before the stop: whatever fails from here on, Flink comes back.
    let mut start_again = StartAgain { armed: true };
    let (run, ()) = tokio::join!(s.syncer.run(&req), async {
        eventually(
            "the run to reach Kubernetes",
            Duration::from_secs(20),
            || async {
                (k8s.connections() > 0)
                    .then_some(())
                    .ok_or_else(|| "no request yet".to_string())
            },
        )
        .await;
        // `stop` returns once the process is gone; only then may the run
        // go on to Flink.
        jobmanager("stop").await;
        k8s.set(Fault::Pass).await;
    });
    let run = run.unwrap_or_else(|e| panic!("a run with Flink gone still completes: {e}"));
    let r = s.record("stream-1").await;
    assert_eq!(r.get_str("status").ok(), Some("RUNNING"), "{r}");
    assert!(
        r.get_str("sync_error").is_ok(),
        "the outage is recorded: {r}"
    );
    assert!(
        !r.contains_key("flink_missing_count"),
        "a cluster that is down is not a miss: {r}"
    );
    assert!(run.errors.iter().any(|e| e.job_id == "stream-1"), "{run:?}");

    jobmanager("start").await;
    start_again.armed = false;
    eventually(
        "the restarted JobManager's REST API",
        Duration::from_secs(90),
        || async {
            overview(&stack)
                .await
                .map(|_| ())
                .ok_or_else(|| "REST not answering".to_string())
        },
    )
    .await;
    // Without HA the restarted cluster has really lost the job: trusted
    // misses, then FAILED once.
    s.sync().await;
    let r = s.record("stream-1").await;
    assert_eq!(
        (
            r.get_str("status").ok(),
            r.get_i64("flink_missing_count").ok()
        ),
        (Some("RUNNING"), Some(1)),
        "{r}"
    );
    assert!(!r.contains_key("sync_error"), "the outage is over: {r}");
    s.sync().await;
    let r = s.record("stream-1").await;
    assert_eq!(r.get_str("status").ok(), Some("FAILED"), "{r}");
    assert!(
        r.get_str("status_reason")
            .unwrap_or_default()
            .contains("not found on Flink cluster"),
        "{r}"
    );
    assert_eq!(
        history(&r).get(&("RUNNING".to_string(), "FAILED".to_string())),
        Some(&1),
        "{r}"
    );
    assert_eq!(
        s.record("wait-1").await.get_str("status").ok(),
        Some("CREATED")
    );

    // The suites after this one need a TaskManager with free slots.
    eventually(
        "the TaskManager to register with the restarted JobManager",
        Duration::from_secs(180),
        || async {
            let o = overview(&stack)
                .await
                .ok_or_else(|| "REST not answering".to_string())?;
            (o["taskmanagers"].as_u64() >= Some(1) && o["slots-available"].as_u64() >= Some(1))
                .then_some(())
                .ok_or_else(|| format!("not yet: {o}"))
        },
    )
    .await;
}

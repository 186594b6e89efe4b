//! An outage that lasts: the same records in every run's `errors`, the same
//! per-system counts in every run's metrics, no write after the first run
//! (the stored `sync_error` already says it), and, once the server is back,
//! the errors cleared once.

use std::collections::{BTreeMap, BTreeSet};

use flink_job_sync::reporting::metrics::emf;
use flink_job_sync::reporting::summary::Summary;
use flink_job_sync::rules::model::System;
use flink_job_sync::runs::sync::SyncRequest;
use test_kit::faultproxy::Fault;
use test_kit::faultrig::{Outcome, Rig, Target};

/// The records a run could not observe through `system`, and its metric.
fn seen(summary: &Summary, system: System, metric: &str) -> (BTreeSet<String>, f64) {
    let records = summary
        .errors
        .iter()
        .filter(|e| e.system == system)
        .map(|e| e.job_id.clone())
        .collect();
    let count = emf(summary, None, chrono::Utc::now())[metric]
        .as_f64()
        .unwrap_or(-1.0);
    (records, count)
}

/// Each record's revision, by job_id.
async fn revisions(rig: &Rig) -> BTreeMap<String, i64> {
    rig.snapshot()
        .await
        .into_iter()
        .map(|(job_id, d)| (job_id, d.get_i64("revision").unwrap_or(0)))
        .collect()
}

async fn an_outage_is_reported_on_every_run(target: Target, system: System, metric: &str) {
    let rig = Rig::new().await;
    let syncer = rig.syncer(&[]).await;
    rig.recover(&syncer, &mut Outcome::default()).await;
    rig.proxy(target).set(Fault::Down).await;
    let mut runs = Vec::new();
    let mut written = Vec::new();
    for _ in 0..3 {
        let before = revisions(&rig).await;
        let summary = syncer
            .run(&SyncRequest::default())
            .await
            .unwrap_or_else(|e| panic!("a {target:?} outage fails no run: {e}"));
        let after = revisions(&rig).await;
        let (records, count) = seen(&summary, system, metric);
        // Only the records in error: the others' health looks go on.
        let rewritten: BTreeSet<&String> = records
            .iter()
            .filter(|j| before.get(*j) != after.get(*j))
            .collect();
        written.push(rewritten.len());
        runs.push((records, count));
    }
    let (first, count) = &runs[0];
    assert!(!first.is_empty(), "the outage is seen: {runs:?}");
    assert_eq!(*count, first.len() as f64, "{metric} counts them: {runs:?}");
    for (records, c) in &runs[1..] {
        assert_eq!(records, first, "the same records on every run: {runs:?}");
        assert_eq!(c, count, "{metric} on every run: {runs:?}");
    }
    assert_eq!(
        written[0],
        first.len(),
        "the first run stores each error: {written:?}"
    );
    assert_eq!(
        &written[1..],
        [0, 0],
        "no write while nothing changes: {written:?}"
    );

    rig.proxy(target).set(Fault::Pass).await;
    let back = syncer
        .run(&SyncRequest::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        seen(&back, system, metric),
        (BTreeSet::new(), 0.0),
        "{back:?}"
    );
    let cleared = rig.snapshot().await;
    for job_id in first {
        assert!(
            !cleared[job_id].contains_key("sync_error"),
            "{job_id}: the error is cleared once the server is back: {}",
            cleared[job_id]
        );
    }
}

#[tokio::test]
async fn a_flink_outage_is_reported_on_every_run_and_cleared_once_flink_is_back() {
    an_outage_is_reported_on_every_run(Target::Flink, System::Flink, "FlinkErrors").await;
}

#[tokio::test]
async fn a_kubernetes_outage_is_reported_on_every_run_and_cleared_once_it_is_back() {
    an_outage_is_reported_on_every_run(Target::Kubernetes, System::Kubernetes, "KubernetesErrors")
        .await;
}

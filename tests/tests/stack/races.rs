//! Races: several sync runs at once on the same collection with the daily
//! cleanup beside them, the same scheduled event delivered twice, and the
//! submitting system writing a record while sync runs. Every transition
//! happens exactly once, final states never regress, counts add up.

use flink_job_sync::adapters::k8s::Kubernetes;
use flink_job_sync::adapters::store::Store;
use flink_job_sync::adapters::store::writes::{Outcome, Write, WriteContext};
use flink_job_sync::rules::cleanup::CleanupRules;
use flink_job_sync::runs::cleanup::{Cleaner, CleanupRequest};
use flink_job_sync::runs::sync::{SyncRequest, handle};
use mongodb::bson::doc;
use test_kit::faultrig::Rig;
use test_kit::scenario::JobState;

/// The fleet's truth reached, each transition recorded exactly once.
async fn assert_truth(rig: &Rig) {
    let (lost, duplicated, problems) = rig.check_truth().await;
    assert_eq!((lost, duplicated), (0, 0), "{problems:#?}");
    assert!(problems.is_empty(), "{problems:#?}");
}

fn expected_transitions(rig: &Rig) -> usize {
    rig.truth.iter().map(|t| t.transitions.len()).sum()
}

#[tokio::test]
async fn concurrent_syncs_and_cleanup_make_each_transition_exactly_once() {
    let rig = Rig::new().await;
    // new-2's Job has completed: the cleanup beside the syncs may see it
    // finished, but must keep it while its record waits for the JobID.
    let pod = rig.pods["new-2"].clone();
    rig.scenario
        .set_state("new-2", &pod, JobState::Succeeded)
        .await;
    let syncers = [
        rig.syncer(&[]).await,
        rig.syncer(&[("SYNC_CHUNK_SIZE", "3")]).await,
        rig.syncer(&[("SYNC_CHUNK_SIZE", "5")]).await,
    ];
    let cfg = &rig.scenario.cfg;
    let cleaner = Cleaner::new(
        Kubernetes::new(rig.scenario.kube.clone(), &cfg.kube),
        Store::connect(&cfg.mongo)
            .await
            .unwrap_or_else(|e| panic!("MongoDB: {e}")),
        // Any finished Job may go, except the evidence of a record still
        // waiting (the scenario's Jobs finished long ago, so no hard limit).
        CleanupRules {
            min_age: chrono::Duration::zero(),
            max_evidence_age: chrono::Duration::days(3650),
        },
    );
    let before = rig.snapshot().await;
    let req = SyncRequest::default();
    let cleanup_req = CleanupRequest::default();
    let (runs, cleanup) = tokio::join!(
        futures::future::join_all(syncers.iter().map(|s| s.run(&req))),
        cleaner.run(&cleanup_req)
    );
    let summaries: Vec<_> = runs
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("a concurrent run failed: {e}")))
        .collect();
    let cleanup = cleanup.unwrap_or_else(|e| panic!("cleanup: {e}"));
    // Deleted or not, depending on whether a sync recorded its JobID
    // first; never deleted with the evidence still only in the pod log.
    assert!(cleanup.evidence_lost.is_empty(), "{cleanup:?}");
    assert!(cleanup.errors.is_empty(), "{cleanup:?}");
    let problems = rig.check_whole(&before, false).await;
    assert!(problems.is_empty(), "{problems:#?}");
    let reported: usize = summaries.iter().flat_map(|s| s.transitions.values()).sum();
    assert_eq!(
        reported,
        expected_transitions(&rig),
        "the runs' reported transitions add up to the fleet's, none twice: {summaries:#?}"
    );
    // Whatever the interleaving, one more run converges, and each transition
    // is in status_history exactly once.
    syncers[0].run(&req).await.unwrap_or_else(|e| panic!("{e}"));
    assert_truth(&rig).await;
}

#[tokio::test]
async fn the_same_scheduled_event_delivered_twice_changes_nothing_twice() {
    let rig = Rig::new().await;
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(test_kit::lambda::workspace_root().join("events/scheduled.json"))
            .unwrap_or_else(|e| panic!("events/scheduled.json: {e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let a = rig.syncer(&[]).await;
    let b = rig.syncer(&[]).await;
    let (first, second) = tokio::join!(
        handle(&a, event.clone(), None),
        handle(&b, event.clone(), None)
    );
    let (first, second) = (
        first.unwrap_or_else(|e| panic!("{e}")),
        second.unwrap_or_else(|e| panic!("{e}")),
    );
    let reported: usize = first
        .transitions
        .values()
        .chain(second.transitions.values())
        .sum();
    assert_eq!(
        reported,
        expected_transitions(&rig),
        "{first:?}\n{second:?}"
    );
    let third = handle(&a, event, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(third.transitions.is_empty(), "{third:?}");
    assert_truth(&rig).await;
}

#[tokio::test]
async fn a_submitter_write_during_a_run_wins_and_the_record_is_retried_next_run() {
    let rig = Rig::new().await;
    let syncer = rig.syncer(&[]).await;
    // A run reads and decides; the submitting system then records the JobID
    // itself and a note of its own, before the run writes.
    let (records, _) = syncer
        .store()
        .records()
        .non_final(None, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let truth = rig
        .truth
        .iter()
        .find(|t| t.job_id == "new-0")
        .cloned()
        .unwrap_or_else(|| panic!("new-0 in the fleet"));
    let record = records
        .iter()
        .find(|r| r.job_id == "new-0")
        .unwrap_or_else(|| panic!("new-0 read"));
    let observed = flink_job_sync::rules::plan::Observed {
        k8s: Some(flink_job_sync::rules::plan::K8sFacts::NoJob),
        ..Default::default()
    };
    let mut plan =
        flink_job_sync::rules::plan::decide(record, &observed, chrono::Utc::now(), syncer.rules());
    plan.changes
        .push(flink_job_sync::rules::plan::Change::SyncError(Some(
            flink_job_sync::rules::plan::SyncError::new(
                flink_job_sync::rules::model::System::Flink,
                "a write the submitter must win against",
                2048,
            ),
        )));
    let write = Write::new(record, &plan, chrono::Utc::now()).unwrap_or_else(|| panic!("a write"));
    rig.scenario
        .records
        .update_one(
            doc! {"job_id": "new-0"},
            doc! {"$set": {"flink_job_id": truth.flink_job_id.clone(), "note": "set by the submitter"}},
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ctx = WriteContext {
        run_id: "run-r",
        history_max: 50,
    };
    let applied = syncer
        .store()
        .writer()
        .apply(&[write], ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(applied, [Outcome::Conflict]);
    let r = rig.scenario.record("new-0").await;
    assert_eq!(r.get_str("note").ok(), Some("set by the submitter"));
    assert!(!r.contains_key("sync_error"), "our write did not land: {r}");
    // The next run starts from the submitter's state and converges.
    let summary = syncer
        .run(&SyncRequest::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.conflicts, 0, "{summary:?}");
    let r = rig.scenario.record("new-0").await;
    assert_eq!(r.get_str("status").ok(), Some("RUNNING"), "{r}");
    assert_eq!(r.get_str("note").ok(), Some("set by the submitter"));
    assert_truth(&rig).await;
}

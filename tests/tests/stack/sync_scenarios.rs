//! Sync through its real `Syncer` against the stack's MongoDB and Flink and an
//! in-process Kubernetes API emulator: every row of the rule, and the faults
//! that must never corrupt or regress a record.

use flink_job_sync::adapters::store::record::to_bson_date;
use flink_job_sync::adapters::store::writes::{Outcome, Write, WriteContext};
use flink_job_sync::rules::model::Status;
use flink_job_sync::runs::sync::SyncRequest;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use test_kit::scenario::{JobState, Scenario, fake_flink, finished_flink_job_id};

fn created(job_id: &str, minutes_ago: i64) -> Document {
    doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": null,
    "submitted_at": to_bson_date(chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)),
    "template_id": "tpl", "owner": "team-a"}
}

fn jobid_line(id: &str) -> String {
    format!("INFO starting\nJob has been submitted with JobID {id}\n")
}

async fn real_flink() -> Scenario {
    let stack = test_kit::stack::Stack::from_env();
    Scenario::new(&stack.flink_rest_url(), &[]).await
}

#[tokio::test]
async fn record_learns_its_jobid_from_the_pod_log_and_finishes_with_flink_times() {
    let s = real_flink().await;
    let flink_id = finished_flink_job_id(&s.stack).await;
    s.insert(created("bounded-1", 1)).await;
    let pod = s.k8s_job("bounded-1", JobState::Succeeded).await;
    s.set_log(&pod, jobid_line(&flink_id)).await;

    let summary = s.sync().await;
    assert_eq!(
        summary.transitions.get("CREATED->FINISHED"),
        Some(&1),
        "{summary:?}"
    );
    let r = s.record("bounded-1").await;
    assert_eq!(r.get_str("status").ok(), Some("FINISHED"));
    assert_eq!(r.get_str("flink_job_id").ok(), Some(flink_id.as_str()));
    assert_eq!(r.get_str("flink_state").ok(), Some("FINISHED"));
    let start = r
        .get_datetime("start_time")
        .expect("start_time")
        .timestamp_millis();
    let end = r
        .get_datetime("end_time")
        .expect("end_time")
        .timestamp_millis();
    let duration = r.get_f64("duration").expect("duration");
    assert!(
        end > start && (duration - (end - start) as f64 / 1000.0).abs() < 1e-9,
        "{r}"
    );
    let history = r.get_array("status_history").expect("history");
    assert_eq!(history.len(), 1);
    let h = history[0].as_document().expect("entry");
    assert_eq!(
        (h.get_str("from").ok(), h.get_str("to").ok()),
        (Some("CREATED"), Some("FINISHED"))
    );
    assert_eq!(
        r.get_str("owner").ok(),
        Some("team-a"),
        "fields sync does not own stay"
    );
    assert_eq!(r.get_i64("revision").ok(), Some(1));
}

#[tokio::test]
async fn running_pod_log_is_read_before_the_job_ends() {
    let s = real_flink().await;
    let flink_id = finished_flink_job_id(&s.stack).await;
    s.insert(created("streaming-1", 1)).await;
    let pod = s.k8s_job("streaming-1", JobState::Running).await;
    s.set_log(&pod, jobid_line(&flink_id)).await;
    s.sync().await;
    let r = s.record("streaming-1").await;
    assert_eq!(r.get_str("flink_job_id").ok(), Some(flink_id.as_str()));
}

#[tokio::test]
async fn failed_kubernetes_job_without_jobid_fails_the_record_with_reason_and_log_tail() {
    let s = real_flink().await;
    s.insert(created("broken-1", 1)).await;
    let pod = s.k8s_job("broken-1", JobState::Failed(1)).await;
    s.set_log(
        &pod,
        "Traceback (most recent call last):\nRuntimeError: table 'dim_users' does not exist\n",
    )
    .await;
    let summary = s.sync().await;
    assert_eq!(summary.transitions.get("CREATED->FAILED"), Some(&1));
    let r = s.record("broken-1").await;
    let reason = r.get_str("status_reason").expect("reason");
    for part in [
        "BackoffLimitExceeded",
        "exit code 1",
        "table 'dim_users' does not exist",
    ] {
        assert!(reason.contains(part), "{part:?} not in {reason:?}");
    }
    assert_eq!(r.get("flink_job_id"), Some(&Bson::Null));
}

#[tokio::test]
async fn complete_job_without_jobid_in_log_fails_the_record() {
    let s = real_flink().await;
    s.insert(created("silent-1", 1)).await;
    let pod = s.k8s_job("silent-1", JobState::Succeeded).await;
    s.set_log(&pod, "submitted nothing\n").await;
    s.sync().await;
    let r = s.record("silent-1").await;
    assert_eq!(r.get_str("status").ok(), Some("FAILED"));
    assert!(
        r.get_str("status_reason")
            .unwrap_or("")
            .starts_with("no Flink JobID in pod log"),
        "{r}"
    );
}

#[tokio::test]
async fn pod_stuck_pulling_its_image_fails_after_the_grace_period() {
    let stack = test_kit::stack::Stack::from_env();
    let s = Scenario::new(
        &stack.flink_rest_url(),
        &[("POD_WAITING_GRACE_SECONDS", "0")],
    )
    .await;
    s.insert(created("noimage-1", 1)).await;
    s.k8s_job("noimage-1", JobState::Waiting("ImagePullBackOff"))
        .await;
    s.sync().await;
    let r = s.record("noimage-1").await;
    assert_eq!(r.get_str("status").ok(), Some("FAILED"));
    assert!(
        r.get_str("status_reason")
            .unwrap_or("")
            .contains("ImagePullBackOff"),
        "{r}"
    );
}

#[tokio::test]
async fn missing_kubernetes_job_waits_out_the_grace_period_then_fails() {
    let s = real_flink().await;
    s.insert(created("young-1", 2)).await;
    let mut old = created("old-1", 0);
    old.insert(
        "submitted_at",
        (chrono::Utc::now() - chrono::Duration::hours(2))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    );
    s.insert(old).await;
    s.sync().await;
    let young = s.record("young-1").await;
    assert_eq!(young.get_str("status").ok(), Some("CREATED"));
    assert!(
        !young.contains_key("revision"),
        "nothing learned, nothing written: {young}"
    );
    let old = s.record("old-1").await;
    assert_eq!(
        old.get_str("status").ok(),
        Some("FAILED"),
        "a string submitted_at counts too"
    );
    assert!(
        old.get_str("status_reason")
            .unwrap_or("")
            .starts_with("Kubernetes Job not found")
    );
}

#[tokio::test]
async fn flink_unreachable_keeps_status_and_records_the_error_until_it_recovers() {
    let s = Scenario::new(&fake_flink::refused(), &[]).await;
    let running = doc! {"job_id": "r-1", "status": "RUNNING", "flink_job_id": "0123456789abcdef0123456789abcdef",
    "submitted_at": to_bson_date(chrono::Utc::now())};
    s.insert(running).await;
    let summary = s.sync().await;
    assert_eq!(summary.errors.len(), 1, "{summary:?}");
    assert_eq!(
        summary.errors[0].system,
        flink_job_sync::rules::model::System::Flink,
        "the failing system is named by type"
    );
    let r = s.record("r-1").await;
    assert_eq!(r.get_str("status").ok(), Some("RUNNING"));
    assert!(
        r.get_str("sync_error")
            .unwrap_or("")
            .contains("cannot connect"),
        "{r}"
    );
    assert!(
        !r.contains_key("flink_missing_count"),
        "a refused connection is not a miss"
    );
    let again = s.sync().await;
    assert_eq!(
        again.records_changed, 0,
        "the same error is not written twice"
    );
}

#[tokio::test]
async fn flink_5xx_and_garbled_json_are_errors_not_misses() {
    for fault in [
        fake_flink::Fault::Status(503),
        fake_flink::Fault::Status(500),
        fake_flink::Fault::GarbledJson,
    ] {
        let s = Scenario::new(
            &fake_flink::start(fault).await,
            &[("FLINK_MISSING_THRESHOLD", "1")],
        )
        .await;
        s.insert(doc! {"job_id": "r-1", "status": "RUNNING", "flink_job_id": "0123456789abcdef0123456789abcdef"})
            .await;
        s.sync().await;
        let r = s.record("r-1").await;
        assert_eq!(r.get_str("status").ok(), Some("RUNNING"), "{fault:?}");
        assert!(r.get_str("sync_error").is_ok(), "{fault:?}: {r}");
    }
}

#[tokio::test]
async fn job_unknown_to_flink_fails_only_after_consecutive_trusted_misses() {
    let stack = test_kit::stack::Stack::from_env();
    let s = Scenario::new(&stack.flink_rest_url(), &[("FLINK_MISSING_THRESHOLD", "2")]).await;
    s.insert(doc! {"job_id": "gone-1", "status": "RUNNING", "flink_job_id": "00000000000000000000000000000000"}).await;
    s.sync().await;
    let r = s.record("gone-1").await;
    assert_eq!(
        (
            r.get_str("status").ok(),
            r.get_i64("flink_missing_count").ok()
        ),
        (Some("RUNNING"), Some(1))
    );
    s.sync().await;
    let r = s.record("gone-1").await;
    assert_eq!(r.get_str("status").ok(), Some("FAILED"));
    assert!(
        r.get_str("status_reason")
            .unwrap_or("")
            .contains("not found on Flink cluster")
    );
}

#[tokio::test]
async fn malformed_records_are_reported_skipped_and_left_as_they_are() {
    let s = real_flink().await;
    let flink_id = finished_flink_job_id(&s.stack).await;
    let bad = [
        doc! {"job_id": 42, "status": "CREATED"},
        doc! {"job_id": "bad-status", "status": 7},
        doc! {"job_id": "bad-id", "status": "RUNNING", "flink_job_id": "../../jobs/x/cancel"},
        doc! {"job_id": "bad-date", "status": "CREATED", "submitted_at": "last tuesday"},
        doc! {"status": "CREATED", "note": "no job_id at all"},
        doc! {"job_id": "huge-1", "status": "RUNNING", "flink_job_id": "f".repeat(1 << 20)},
    ];
    for d in &bad {
        s.insert(d.clone()).await;
    }
    s.insert(doc! {"job_id": "good-1", "status": "RUNNING", "flink_job_id": flink_id.as_str()})
        .await;
    let before: Vec<Document> = futures::TryStreamExt::try_collect(
        s.records
            .find(doc! {"job_id": {"$ne": "good-1"}})
            .sort(doc! {"_id": 1})
            .await
            .expect("find"),
    )
    .await
    .expect("collect");
    let summary = s.sync().await;
    assert_eq!(summary.malformed.len(), 5, "{summary:?}");
    assert!(
        summary.malformed.iter().all(|m| m.error.len() < 600),
        "a huge field is not echoed whole: {summary:?}"
    );
    assert!(
        summary
            .malformed
            .iter()
            .any(|m| m.job_id.starts_with("_id ")),
        "named by _id when job_id is no string"
    );
    let after: Vec<Document> = futures::TryStreamExt::try_collect(
        s.records
            .find(doc! {"job_id": {"$ne": "good-1"}})
            .sort(doc! {"_id": 1})
            .await
            .expect("find"),
    )
    .await
    .expect("collect");
    assert_eq!(before, after, "malformed records are never rewritten");
    assert_eq!(
        s.record("good-1").await.get_str("status").ok(),
        Some("FINISHED")
    );
}

#[tokio::test]
async fn external_write_between_read_and_write_wins_and_counts_as_conflict() {
    let s = real_flink().await;
    s.insert(created("race-1", 1)).await;
    let pod = s.k8s_job("race-1", JobState::Succeeded).await;
    s.set_log(&pod, "no id here\n").await;
    // Observe and decide as a run does, then let the submitting system write.
    let (records, _) = s
        .syncer
        .store()
        .records()
        .non_final(None, None)
        .await
        .expect("read");
    let record = records.into_iter().next().expect("the record");
    let plan = flink_job_sync::rules::plan::decide(
        &record,
        &flink_job_sync::rules::plan::Observed {
            k8s: Some(flink_job_sync::rules::plan::K8sFacts::Job(
                flink_job_sync::rules::plan::JobFacts {
                    complete: true,
                    ..Default::default()
                },
            )),
            ..Default::default()
        },
        chrono::Utc::now(),
        s.syncer.rules(),
    );
    let write = Write::new(&record, &plan, chrono::Utc::now()).expect("a write");
    s.records
        .update_one(
            doc! {"job_id": "race-1"},
            doc! {"$set": {"status": "CANCELLED", "cancelled_by": "user"}},
        )
        .await
        .expect("external write");
    let ctx = WriteContext {
        run_id: "run-x",
        history_max: 50,
    };
    let applied = s
        .syncer
        .store()
        .writer()
        .apply(&[write], ctx)
        .await
        .expect("apply");
    assert_eq!(applied, [Outcome::Conflict], "the only write is a conflict");
    let r = s.record("race-1").await;
    assert_eq!(
        r.get_str("status").ok(),
        Some("CANCELLED"),
        "the external write wins"
    );
    assert!(!r.contains_key("status_reason"));
}

#[tokio::test]
async fn a_quiet_fleet_costs_no_writes_and_runs_are_recorded() {
    let s = real_flink().await;
    let flink_id = finished_flink_job_id(&s.stack).await;
    s.insert(created("young-1", 1)).await;
    s.insert(doc! {"job_id": "done-1", "status": "FINISHED", "flink_job_id": flink_id.as_str()})
        .await;
    let first = s.sync().await;
    let second = s.sync().await;
    assert_eq!(
        (first.records_checked, first.records_changed),
        (1, 0),
        "final records are not read"
    );
    assert_eq!(second.records_changed, 0);
    let runs = s.db.collection::<Document>("flink_job_sync_runs");
    let n = runs
        .count_documents(doc! {"state": "complete", "scope": "all"})
        .await
        .expect("count");
    assert_eq!(n, 2);
}

#[tokio::test]
async fn dry_run_reports_changes_and_writes_nothing() {
    let s = real_flink().await;
    s.insert(created("dry-1", 1)).await;
    let pod = s.k8s_job("dry-1", JobState::Failed(2)).await;
    s.set_log(&pod, "boom\n").await;
    let summary = s
        .sync_with(SyncRequest {
            job_ids: None,
            dry_run: true,
            clusters: None,
        })
        .await;
    assert_eq!(summary.transitions.get("CREATED->FAILED"), Some(&1));
    assert_eq!(
        s.record("dry-1").await.get_str("status").ok(),
        Some("CREATED")
    );
    let runs = s.db.collection::<Document>("flink_job_sync_runs");
    assert_eq!(runs.count_documents(doc! {}).await.expect("count"), 0);
    let listed = &summary.would_change;
    assert_eq!(listed.len(), 1, "{summary:?}");
    assert_eq!(
        (listed[0].job_id.as_str(), listed[0].from, listed[0].to),
        ("dry-1", Status::Created, Status::Failed)
    );
    assert!(
        listed[0].reason.contains("failed") && listed[0].reason.contains("learned from kubernetes"),
        "the reason says why: {:?}",
        listed[0].reason
    );
}

#[tokio::test]
async fn a_dry_run_lists_at_most_a_hundred_records_and_counts_them_all() {
    let s = real_flink().await;
    let ids: Vec<String> = (0..105).map(|i| format!("many-{i:03}")).collect();
    for id in &ids {
        // Long gone without a Job: each fails on the grace rule alone.
        s.insert(created(id, 24 * 60)).await;
    }
    let summary = s
        .sync_with(SyncRequest {
            job_ids: None,
            dry_run: true,
            clusters: None,
        })
        .await;
    assert_eq!(summary.records_changed, 105);
    assert_eq!(summary.would_change.len(), 100);
    let reason = &summary.would_change[0].reason;
    assert!(
        reason.contains("1d after submission (grace 10m)"),
        "the reason says how long the record really waited: {reason}"
    );
    assert_eq!(
        s.record("many-000").await.get_str("status").ok(),
        Some("CREATED")
    );
}

#[tokio::test]
async fn job_ids_limit_the_run_to_those_records() {
    let s = real_flink().await;
    for j in ["a-1", "b-1"] {
        s.insert(created(j, 1)).await;
        let pod = s.k8s_job(j, JobState::Failed(1)).await;
        s.set_log(&pod, "x\n").await;
    }
    let summary = s
        .sync_with(SyncRequest {
            job_ids: Some(vec!["a-1".into(), "zzz".into()]),
            dry_run: false,
            clusters: None,
        })
        .await;
    assert_eq!(summary.records_checked, 1);
    assert_eq!(summary.not_found, vec!["zzz".to_string()]);
    assert!(summary.already_final.is_empty(), "{summary:?}");
    assert!(
        summary.would_change.is_empty(),
        "only dry runs list changes"
    );
    let again = s
        .sync_with(SyncRequest {
            job_ids: Some(vec!["a-1".into(), "zzz".into()]),
            dry_run: false,
            clusters: None,
        })
        .await;
    assert_eq!(
        (again.not_found, again.already_final),
        (vec!["zzz".to_string()], vec!["a-1".to_string()]),
        "a record that is now final is told apart from one that does not exist"
    );
    assert_eq!(
        s.record("a-1").await.get_str("status").ok(),
        Some(Status::Failed.as_str())
    );
    assert_eq!(
        s.record("b-1").await.get_str("status").ok(),
        Some("CREATED")
    );
}

#[tokio::test]
async fn a_run_near_its_deadline_stops_between_chunks_and_the_next_resumes() {
    let stack = test_kit::stack::Stack::from_env();
    let s = Scenario::new(&stack.flink_rest_url(), &[("SYNC_CHUNK_SIZE", "2")]).await;
    let jobs = ["d-1", "d-2", "d-3", "d-4", "d-5"];
    for j in jobs {
        s.insert(created(j, 1)).await;
        let pod = s.k8s_job(j, JobState::Failed(1)).await;
        s.set_log(&pod, "x\n").await;
    }
    let past = Some(std::time::Instant::now());
    let mut states = Vec::new();
    for _ in 0..3 {
        let summary = s
            .syncer
            .run_until(&SyncRequest::default(), past)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        states.push((
            summary.records_checked,
            summary.records_deferred,
            summary.complete,
        ));
    }
    // Each run does one chunk (the first always runs), then resumes after it.
    assert_eq!(states, [(2, 3, false), (2, 1, false), (1, 0, true)]);
    for j in jobs {
        assert_eq!(
            s.record(j).await.get_str("status").ok(),
            Some("FAILED"),
            "{j} was reached"
        );
    }
    let runs = s.db.collection::<Document>("flink_job_sync_runs");
    assert_eq!(
        runs.count_documents(doc! {"state": "partial"})
            .await
            .expect("count"),
        2
    );
}

#[tokio::test]
async fn a_script_that_submitted_two_jobs_fails_when_one_fails_and_keeps_both_states() {
    let s = real_flink().await;
    // The real script's output: two "Job has been submitted" lines.
    let log = test_kit::scenario::run_flink_cli(&s.stack, "two_jobs.py");
    let ids: Vec<String> = flink_job_sync::rules::podlog::submitted_job_ids(log.as_bytes())
        .iter()
        .map(|i| i.to_string())
        .collect();
    let [finished, failed] = ids.as_slice() else {
        panic!("two_jobs.py submits two jobs; its output names {ids:?}:\n{log}")
    };
    let a = test_kit::scenario::wait_for_flink_state(&s.stack, finished, "FINISHED").await;
    let b = test_kit::scenario::wait_for_flink_state(&s.stack, failed, "FAILED").await;
    let millis =
        |v: &serde_json::Value, k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k}: {v}"));
    s.insert(created("two-jobs", 1)).await;
    let pod = s.k8s_job("two-jobs", JobState::Succeeded).await;
    s.set_log(&pod, log.clone()).await;
    let summary = s.sync().await;
    assert_eq!(
        summary.transitions.get("CREATED->FAILED"),
        Some(&1),
        "{summary:?}"
    );
    let r = s.record("two-jobs").await;
    assert_eq!(
        r.get_str("flink_job_id").ok(),
        Some(finished.as_str()),
        "the first submitted stays first"
    );
    let states = r
        .get_document("flink_jobs_state")
        .unwrap_or_else(|e| panic!("{e}: {r}"));
    assert_eq!(states.get_str(finished).ok(), Some("FINISHED"), "{r}");
    assert_eq!(states.get_str(failed).ok(), Some("FAILED"), "{r}");
    assert!(
        r.get_str("status_reason")
            .is_ok_and(|x| !x.is_empty() && !x.contains("not found")),
        "Flink's root cause of the failed job: {r}"
    );
    let date = |k: &str| {
        r.get_datetime(k)
            .map(|d| d.timestamp_millis())
            .unwrap_or_else(|e| panic!("{k}: {e}: {r}"))
    };
    assert_eq!(
        (date("start_time"), date("end_time")),
        (
            millis(&a, "start-time").min(millis(&b, "start-time")),
            millis(&a, "end-time").max(millis(&b, "end-time"))
        ),
        "the times span both jobs"
    );
}

#[tokio::test]
async fn a_refused_payload_records_no_run() {
    let s = real_flink().await;
    s.insert(created("refused-1", 1)).await;
    let req = SyncRequest {
        clusters: Some(vec!["nope".to_string()]),
        ..Default::default()
    };
    let err = s
        .syncer
        .run(&req)
        .await
        .expect_err("a cluster this deployment does not follow is refused");
    assert!(err.to_string().contains("\"nope\""), "{err}");
    let runs = s.db.collection::<Document>("flink_job_sync_runs");
    let recorded: Vec<Document> = runs
        .find(doc! {})
        .await
        .expect("runs")
        .try_collect()
        .await
        .expect("runs");
    assert!(
        recorded.is_empty(),
        "a refused run records nothing: {recorded:?}"
    );
    assert_eq!(
        s.record("refused-1").await.get_str("status").ok(),
        Some("CREATED")
    );
}

#[tokio::test]
async fn records_sharing_a_job_id_are_left_alone_with_an_error_naming_it() {
    // The unique index on job_id is only wanted: a collection older than it
    // may hold duplicates. Neither record may be decided, reported or
    // announced on the other's account, so neither is synced until one of
    // them is renamed or removed.
    let s = real_flink().await;
    let flink_id = finished_flink_job_id(&s.stack).await;
    let mut finishing = created("dup-1", 1);
    finishing.insert("k8s_job_name", "dup-a");
    let mut failing = created("dup-1", 1);
    failing.insert("k8s_job_name", "dup-b");
    s.records
        .insert_many([finishing, failing])
        .await
        .expect("two records with one job_id");
    s.insert(created("single-1", 1)).await;
    let pod_a = s.k8s_job("dup-a", JobState::Succeeded).await;
    s.set_log(&pod_a, jobid_line(&flink_id)).await;
    let pod_b = s.k8s_job("dup-b", JobState::Failed(1)).await;
    s.set_log(&pod_b, "Traceback: boom\n").await;
    let pod = s.k8s_job("single-1", JobState::Succeeded).await;
    s.set_log(&pod, jobid_line(&flink_id)).await;

    let summary = s.sync().await;
    assert_eq!(
        summary.transitions.get("CREATED->FINISHED"),
        Some(&1),
        "only the record with a job_id of its own moves: {summary:?}"
    );
    assert_eq!(summary.transitions.len(), 1, "{summary:?}");
    assert_eq!(summary.records_changed, 3, "{summary:?}");
    let dup_errors: Vec<_> = summary
        .errors
        .iter()
        .filter(|e| e.job_id == "dup-1")
        .collect();
    assert_eq!(dup_errors.len(), 2, "{summary:?}");
    for name in ["dup-a", "dup-b"] {
        let r = s
            .records
            .find_one(doc! {"job_id": "dup-1", "k8s_job_name": name})
            .await
            .expect("read")
            .expect("the record");
        assert_eq!(r.get_str("status").ok(), Some("CREATED"), "{r}");
        assert!(
            r.get("flink_job_id").is_some_and(|v| *v == Bson::Null),
            "{r}"
        );
        let e = r.get_str("sync_error").unwrap_or_default();
        assert!(
            e.starts_with("mongodb: ") && e.contains("\"dup-1\" is shared by 2 records"),
            "{r}"
        );
    }
    // A second run writes nothing more.
    let again = s.sync().await;
    assert_eq!(again.records_changed, 0, "{again:?}");
}

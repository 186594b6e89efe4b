//! Many Flink clusters: records name theirs in `flink_cluster`; the stack's
//! real Flink serves the records that name none, a Flink stand-in a second
//! cluster. One overview per cluster and run; a cluster down or unknown
//! touches only its own records; a run can be scoped to some clusters.

use flink_job_sync::adapters::flink::FlinkClient;
use flink_job_sync::adapters::store::record::to_bson_date;
use flink_job_sync::runs::sync::SyncRequest;
use mongodb::bson::{Document, doc};
use test_kit::flinkfake::{FakeJob, FlinkFake};
use test_kit::scenario::{JobState, Scenario, fake_flink, finished_flink_job_id};
use test_kit::stack::Stack;

const SECOND: &str = "5ec0d000000000000000000000000002";

fn record(job_id: &str, flink_id: &str, cluster: Option<&str>) -> Document {
    let mut d = doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": flink_id,
    "submitted_at": to_bson_date(chrono::Utc::now())};
    if let Some(c) = cluster {
        d.insert("flink_cluster", c);
    }
    d
}

fn client(url: &str) -> FlinkClient {
    FlinkClient::new(url, None, std::time::Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"))
}

async fn second_cluster() -> String {
    let start = chrono::Utc::now().timestamp_millis() - 60_000;
    FlinkFake::with_jobs([(SECOND.to_string(), FakeJob::new("RUNNING", start, -1))].into())
        .serve()
        .await
}

/// A scenario on the real Flink (the records without a cluster) and the
/// stand-in named `second`.
async fn with_second_cluster() -> (Stack, Scenario) {
    let stack = Stack::from_env();
    let mut s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    s.syncer
        .add_cluster("second", client(&second_cluster().await));
    (stack, s)
}

fn status(d: &Document) -> &str {
    d.get_str("status").unwrap_or_default()
}

#[tokio::test]
async fn records_follow_the_cluster_they_name() {
    let (stack, s) = with_second_cluster().await;
    let finished = finished_flink_job_id(&stack).await;
    s.insert(record("on-default", &finished, None)).await;
    s.insert(record("on-second", SECOND, Some("second"))).await;
    let summary = s.sync().await;
    assert!(summary.errors.is_empty(), "{summary:?}");
    assert_eq!(status(&s.record("on-default").await), "FINISHED");
    assert_eq!(status(&s.record("on-second").await), "RUNNING");
}

#[tokio::test]
async fn a_cluster_that_is_down_touches_only_its_own_records() {
    let stack = Stack::from_env();
    let mut s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    s.syncer.add_cluster("down", client(&fake_flink::refused()));
    let finished = finished_flink_job_id(&stack).await;
    s.insert(record("healthy-side", &finished, None)).await;
    s.insert(record("down-side", SECOND, Some("down"))).await;
    for _ in 0..4 {
        s.sync().await;
    }
    assert_eq!(status(&s.record("healthy-side").await), "FINISHED");
    let down = s.record("down-side").await;
    assert_eq!(
        status(&down),
        "CREATED",
        "never failed for a cluster that is down: {down}"
    );
    assert!(
        down.get("flink_missing_count").is_none(),
        "no miss counted: {down}"
    );
    assert!(
        down.get_str("sync_error")
            .is_ok_and(|e| e.starts_with("flink: ")),
        "{down}"
    );
}

#[tokio::test]
async fn a_record_naming_an_unknown_cluster_says_so_and_is_never_failed() {
    let (_, s) = with_second_cluster().await;
    s.insert(record("lost", SECOND, Some("staging"))).await;
    for _ in 0..4 {
        s.sync().await;
    }
    let r = s.record("lost").await;
    assert_eq!(status(&r), "CREATED", "{r}");
    let e = r.get_str("sync_error").unwrap_or_default();
    assert!(
        e.contains("\"staging\"") && e.contains("known: second"),
        "names the cluster and the known ones: {e}"
    );
}

#[tokio::test]
async fn a_run_scoped_to_some_clusters_reads_only_their_records() {
    let (stack, s) = with_second_cluster().await;
    let finished = finished_flink_job_id(&stack).await;
    s.insert(record("on-default", &finished, None)).await;
    s.insert(record("on-second", SECOND, Some("second"))).await;
    let scoped = |clusters: &[&str]| SyncRequest {
        clusters: Some(clusters.iter().map(|c| c.to_string()).collect()),
        ..Default::default()
    };
    let only_second = s.sync_with(scoped(&["second"])).await;
    assert_eq!(only_second.records_checked, 1, "{only_second:?}");
    assert_eq!(
        status(&s.record("on-default").await),
        "CREATED",
        "out of scope"
    );
    assert_eq!(status(&s.record("on-second").await), "RUNNING");
    let default = s.sync_with(scoped(&["default"])).await;
    assert_eq!(default.records_checked, 1, "{default:?}");
    assert_eq!(status(&s.record("on-default").await), "FINISHED");
    let e = s
        .syncer
        .run(&scoped(&["nowhere"]))
        .await
        .expect_err("an unknown cluster is refused");
    assert_eq!(e.kind(), "InputError");
    assert!(e.to_string().contains("known: default, second"), "{e}");
}

#[tokio::test]
async fn a_job_running_on_flink_with_no_record_is_reported_untracked_and_announced_once() {
    use flink_job_sync::adapters::events::Publisher;
    let stack = Stack::from_env();
    let id = test_kit::scenario::submit_streaming_with_flink_cli(&stack, "unbounded.py").await;
    test_kit::scenario::wait_for_flink_state(&stack, &id, "RUNNING").await;
    let mut s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    let sdk = test_kit::aws::sdk_config();
    let bus = test_kit::stack::unique_name("fjs-untracked").replace('_', "-");
    aws_sdk_eventbridge::Client::new(&sdk)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bus (moto): {e:?}"));
    s.syncer
        .set_events(Some(Publisher::new(&sdk, &bus, "flink-job-sync")));
    // A record whose pod log names the job claims it as soon as the run
    // learns it: a dry run, which writes nothing, does not call it untracked.
    s.insert(
        doc! {"job_id": "learning", "status": "CREATED", "flink_job_id": null,
        "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let pod = s.k8s_job("learning", JobState::Running).await;
    s.set_log(&pod, format!("Job has been submitted with JobID {id}\n"))
        .await;
    let dry = s
        .sync_with(SyncRequest {
            dry_run: true,
            ..Default::default()
        })
        .await;
    assert_eq!(dry.records_changed, 1, "{dry:?}");
    assert!(
        !dry.untracked.iter().any(|u| u.flink_job_id == id),
        "{dry:?}"
    );
    let records = s.db.collection::<Document>("flink_jobs");
    records
        .delete_one(doc! {"job_id": "learning"})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = s.sync().await;
    let ours: Vec<_> = first
        .untracked
        .iter()
        .filter(|u| u.flink_job_id == id)
        .collect();
    assert_eq!(ours.len(), 1, "{first:?}");
    assert_eq!(
        (ours[0].cluster.name(), ours[0].state.as_str()),
        ("default", "RUNNING")
    );
    assert!(first.untracked_count >= 1);
    let announced = |s: &Scenario| {
        let db = s.db.clone();
        let id = id.clone();
        async move {
            db.collection::<Document>("flink_jobs_untracked")
                .find_one(doc! {"_id": format!("default/{id}")})
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .and_then(|d| d.get_bool("announced").ok())
        }
    };
    assert_eq!(
        announced(&s).await,
        Some(true),
        "announced by the first run"
    );
    let published_first = first.events_published;
    // Claimed by a record the run reads: no longer untracked, and never
    // announced again.
    s.insert(record("now-tracked", &id, None)).await;
    let second = s.sync().await;
    assert!(
        !second.untracked.iter().any(|u| u.flink_job_id == id),
        "{second:?}"
    );
    // Claimed by a final record only (a record closed by hand while its job
    // runs on): still claimed, which the run learns from the store, not
    // from the records it read.
    records
        .update_one(
            doc! {"job_id": "now-tracked"},
            doc! {"$set": {"status": "CANCELLED"}},
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let third = s.sync().await;
    assert_eq!(third.records_checked, 0, "{third:?}");
    assert!(
        !third.untracked.iter().any(|u| u.flink_job_id == id),
        "{third:?}"
    );
    // Claimed by a final record only among its `flink_job_ids` (a record of
    // several jobs): the second indexed query finds it.
    records
        .update_one(
            doc! {"job_id": "now-tracked"},
            doc! {"$set": {"flink_job_id": mongodb::bson::Bson::Null, "flink_job_ids": ["0000000000000000000000000000abcd", &id]}},
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let fourth = s.sync().await;
    assert!(
        !fourth.untracked.iter().any(|u| u.flink_job_id == id),
        "{fourth:?}"
    );
    assert!(published_first >= 1);
    let cancel = reqwest::Client::new()
        .patch(format!("{}/jobs/{id}?mode=cancel", stack.flink_rest_url()))
        .send()
        .await;
    assert!(cancel.is_ok());
}

#[tokio::test]
async fn two_records_claiming_one_jobid_are_reported_and_neither_moves() {
    let stack = Stack::from_env();
    let s = Scenario::new(&stack.flink_rest_url(), &[]).await;
    let finished = finished_flink_job_id(&stack).await;
    s.insert(record("claim-a", &finished, None)).await;
    s.insert(record("claim-b", &finished, None)).await;
    let summary = s.sync().await;
    assert_eq!(summary.duplicate_job_ids.len(), 1, "{summary:?}");
    assert_eq!(summary.duplicate_job_ids[0].flink_job_id, finished);
    assert_eq!(
        summary.duplicate_job_ids[0].job_ids,
        vec!["claim-a", "claim-b"]
    );
    for job in ["claim-a", "claim-b"] {
        let r = s.record(job).await;
        assert_eq!(status(&r), "CREATED", "{r}");
        assert!(
            r.get_str("sync_error")
                .is_ok_and(|e| e.contains("also claimed")),
            "{r}"
        );
    }
}

//! State-change events through moto's EventBridge: a rule with an SQS target
//! receives exactly one event per transition, also when EventBridge was down
//! when the transition happened; each event is the README's, key for key
//! (a state change learned from Flink, an untracked job); and one that
//! EventBridge took while MongoDB was cut before the acknowledgement is sent
//! again, with the same `event_id`.

use std::collections::HashMap;

use flink_job_sync::adapters::events::Publisher;
use flink_job_sync::adapters::store::record::to_bson_date;
use mongodb::bson::doc;
use test_kit::scenario::{JobState, Scenario};
use test_kit::stack::unique_name;

struct Bus {
    name: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

/// A bus, and a rule routing `flink-job-sync` state changes to a fresh SQS queue.
async fn bus() -> Bus {
    bus_for(&["Flink Job State Change"]).await
}

/// A bus whose rule routes the given detail-types to a fresh SQS queue.
async fn bus_for(detail_types: &[&str]) -> Bus {
    let sdk = test_kit::aws::sdk_config();
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = unique_name("fjs-bus").replace('_', "-");
    events
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bus (moto at AWS_ENDPOINT_URL): {e:?}"));
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create queue: {e:?}"))
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("queue arn: {e:?}"))
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .unwrap_or_default();
    events
        .put_rule()
        .name(&name)
        .event_bus_name(&name)
        .event_pattern(
            serde_json::json!({"source": ["flink-job-sync"], "detail-type": detail_types})
                .to_string(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put rule: {e:?}"));
    events
        .put_targets()
        .rule(&name)
        .event_bus_name(&name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(arn)
                .build()
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put targets: {e:?}"));
    Bus {
        name,
        queue_url,
        sqs,
    }
}

impl Bus {
    /// The events delivered, drained from the queue until there are at
    /// least `n` (polled: moto routes an event to the queue as it takes it).
    async fn received(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut got = Vec::new();
        loop {
            got.extend(self.drain().await);
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} events did not reach the queue within 10 s; got {got:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Every event delivered so far, drained from the queue.
    async fn drain(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let msgs = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receive: {e:?}"));
            let batch = msgs.messages();
            if batch.is_empty() {
                return out;
            }
            for m in batch {
                out.push(serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default());
                if let Some(h) = m.receipt_handle() {
                    let _ = self
                        .sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(h)
                        .send()
                        .await;
                }
            }
        }
    }
}

/// A Flink that runs no job: these records fail before Flink has their
/// JobIDs, and the stack's real cluster may be running other tests' jobs,
/// which a full run would announce as untracked.
async fn flink_running_nothing() -> String {
    test_kit::flinkfake::FlinkFake::with_jobs(Default::default())
        .serve()
        .await
}

fn failing_record(job_id: &str) -> mongodb::bson::Document {
    doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": null, "submitted_at": to_bson_date(chrono::Utc::now())}
}

#[tokio::test]
async fn each_transition_is_announced_exactly_once() {
    let bus = bus().await;
    let mut s = Scenario::new(&flink_running_nothing().await, &[]).await;
    s.syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config(),
        &bus.name,
        "flink-job-sync",
    )));
    for j in ["ev-a", "ev-b"] {
        s.insert(failing_record(j)).await;
        let pod = s.k8s_job(j, JobState::Failed(3)).await;
        s.set_log(&pod, "Traceback\nValueError: bad input\n").await;
    }
    let summary = s.sync().await;
    assert_eq!(summary.events_published, 2, "{summary:?}");
    s.sync().await;
    let events = bus.drain().await;
    assert_eq!(events.len(), 2, "{events:?}");
    let by_job: HashMap<String, &serde_json::Value> = events
        .iter()
        .map(|e| {
            (
                e["detail"]["job_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e,
            )
        })
        .collect();
    let a = by_job
        .get("ev-a")
        .unwrap_or_else(|| panic!("no event for ev-a: {events:?}"));
    assert_eq!(a["source"], "flink-job-sync");
    assert_eq!(a["detail-type"], "Flink Job State Change");
    assert_eq!(a["detail"]["previous_status"], "CREATED");
    assert_eq!(a["detail"]["status"], "FAILED");
    assert!(
        a["detail"]["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("ValueError: bad input")
    );
    assert_eq!(a["detail"]["event_id"], "ev-a:1");
    assert!(
        a["detail"]["transition_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let r = s.record("ev-a").await;
    assert!(
        r.get_array("pending_events")
            .map(|p| p.is_empty())
            .unwrap_or(true),
        "acknowledged events leave the record: {r}"
    );
}

#[tokio::test]
async fn transitions_made_while_eventbridge_is_down_are_announced_later_once() {
    let bus = bus().await;
    let mut s = Scenario::new(&flink_running_nothing().await, &[]).await;
    let down = test_kit::aws::sdk_config_at(&test_kit::scenario::fake_flink::refused());
    s.syncer
        .set_events(Some(Publisher::new(&down, &bus.name, "flink-job-sync")));
    s.insert(failing_record("late-a")).await;
    let pod = s.k8s_job("late-a", JobState::Failed(1)).await;
    s.set_log(&pod, "boom\n").await;

    let first = s.sync().await;
    assert_eq!(
        first.transitions.get("CREATED->FAILED"),
        Some(&1),
        "the transition lands without EventBridge"
    );
    assert_eq!(
        (first.events_published, first.events_pending),
        (0, 1),
        "{first:?}"
    );
    let r = s.record("late-a").await;
    assert_eq!(r.get_str("status").ok(), Some("FAILED"));
    assert_eq!(r.get_array("pending_events").map(|p| p.len()).ok(), Some(1));

    s.syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config(),
        &bus.name,
        "flink-job-sync",
    )));
    let second = s.sync().await;
    assert_eq!(
        (
            second.records_checked,
            second.events_published,
            second.events_pending
        ),
        (0, 1, 0),
        "{second:?}"
    );
    s.sync().await;
    let events = bus.drain().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["event_id"], "late-a:1");
    assert_eq!(events[0]["detail"]["status"], "FAILED");
}

async fn failing_fleet(s: &Scenario, names: &[&str]) {
    for j in names {
        s.insert(failing_record(j)).await;
        let pod = s.k8s_job(j, JobState::Failed(1)).await;
        s.set_log(&pod, "boom\n").await;
    }
}

#[tokio::test]
async fn throttled_eventbridge_keeps_events_pending_and_delivers_them_once_later() {
    let bus = bus().await;
    let endpoint = test_kit::aws::endpoint();
    let proxy = test_kit::faultproxy::FaultProxy::in_front_of(&endpoint).await;
    proxy
        .set(test_kit::faultproxy::Fault::Http(
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into(),
        ))
        .await;
    let mut s = Scenario::new(&flink_running_nothing().await, &[]).await;
    s.syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config_at(&proxy.url_for(&endpoint)),
        &bus.name,
        "flink-job-sync",
    )));
    failing_fleet(&s, &["thr-a", "thr-b", "thr-c"]).await;
    let first = s.sync().await;
    assert_eq!(first.transitions.get("CREATED->FAILED"), Some(&3));
    assert_eq!(
        (first.events_published, first.events_pending),
        (0, 3),
        "{first:?}"
    );
    assert!(
        first.event_errors.iter().any(|e| e.contains("Throttling")),
        "{first:?}"
    );
    proxy.set(test_kit::faultproxy::Fault::Pass).await;
    let second = s.sync().await;
    assert_eq!(
        (second.events_published, second.events_pending),
        (3, 0),
        "{second:?}"
    );
    s.sync().await;
    let events = bus.drain().await;
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| {
            e["detail"]["event_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["thr-a:1", "thr-b:1", "thr-c:1"], "{events:?}");
}

/// An EventBridge that takes only the first entry of each PutEvents call and
/// fails the rest, remembering the event_ids it took.
async fn half_deaf_eventbridge() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::response::IntoResponse;
    let taken = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let t = taken.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let t = t.clone();
        async move {
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let entries = req["Entries"].as_array().cloned().unwrap_or_default();
            let mut out = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                if i == 0 {
                    let detail: serde_json::Value =
                        serde_json::from_str(e["Detail"].as_str().unwrap_or("{}")).unwrap_or_default();
                    t.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(detail["event_id"].as_str().unwrap_or_default().to_string());
                    out.push(serde_json::json!({"EventId": format!("ev-{i}")}));
                } else {
                    out.push(serde_json::json!({"ErrorCode": "InternalFailure", "ErrorMessage": "injected partial failure"}));
                }
            }
            let failed = entries.len().saturating_sub(1);
            (
                [("content-type", "application/x-amz-json-1.1")],
                serde_json::json!({"FailedEntryCount": failed, "Entries": out}).to_string(),
            )
                .into_response()
        }
    });
    (test_kit::stack::serve_local(app).await, taken)
}

#[tokio::test]
async fn partial_putevents_failures_lose_and_duplicate_no_event() {
    let (url, taken) = half_deaf_eventbridge().await;
    let mut s = Scenario::new(&flink_running_nothing().await, &[]).await;
    s.syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config_at(&url),
        "bus",
        "flink-job-sync",
    )));
    failing_fleet(&s, &["pf-a", "pf-b", "pf-c", "pf-d"]).await;
    let mut pending = usize::MAX;
    for _ in 0..6 {
        let summary = s.sync().await;
        pending = summary.events_pending;
        if pending == 0 {
            break;
        }
        assert!(summary.events_published <= 1, "{summary:?}");
    }
    assert_eq!(pending, 0, "every event delivered within four runs");
    let mut ids = taken.lock().unwrap_or_else(|p| p.into_inner()).clone();
    ids.sort();
    assert_eq!(ids, ["pf-a:1", "pf-b:1", "pf-c:1", "pf-d:1"]);
}

#[tokio::test]
async fn a_health_change_is_announced_once_as_a_health_change() {
    let bus = bus_for(&["Flink Job State Change", "Flink Job Health Change"]).await;
    let id = "5eed0000000000000000000000000001";
    let start = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let flink = test_kit::flinkfake::FlinkFake::with_jobs(
        [(
            id.to_string(),
            test_kit::flinkfake::FakeJob::new("RUNNING", start, -1),
        )]
        .into(),
    );
    let url = flink.serve().await;
    let mut s = Scenario::new(&url, &[]).await;
    s.syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config(),
        &bus.name,
        "flink-job-sync",
    )));
    s.insert(
        doc! {"job_id": "h-1", "status": "RUNNING", "flink_job_id": id,
        "flink_state": "RUNNING", "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let first = s.sync().await;
    assert_eq!(
        (first.health_checked, first.health_changes),
        (1, 1),
        "{first:?}"
    );
    let again = s.sync().await;
    assert_eq!(
        (again.health_checked, again.health_changes),
        (1, 0),
        "{again:?}"
    );
    let events = bus.drain().await;
    let health: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "Flink Job Health Change")
        .collect();
    assert_eq!(health.len(), 1, "{events:?}");
    let d = &health[0]["detail"];
    assert_eq!(d["job_id"], "h-1");
    assert_eq!(d["health"], "HEALTHY");
    assert_eq!(d["previous_health"], serde_json::Value::Null);
    assert_eq!(d["health_reasons"], serde_json::json!([]));
    assert_eq!(d["event_id"], format!("h-1:1:health"));
    let r = s.record("h-1").await;
    assert!(
        r.get_array("pending_events").map_or(true, |p| p.is_empty()),
        "{r}"
    );
}

/// The keys of a state change's `detail`, as the README lists them.
const STATE_CHANGE_KEYS: [&str; 12] = [
    "duration",
    "end_time",
    "event_id",
    "flink_job_id",
    "flink_state",
    "job_id",
    "learned_from",
    "previous_status",
    "start_time",
    "status",
    "status_reason",
    "transition_at",
];

fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn a_failure_learned_from_flink_is_announced_with_every_detail_the_readme_lists() {
    let bus = bus().await;
    let id = "ef163bff25523543d6699ac3c0e9b72e";
    // 2026-11-23T20:26:00Z, and 152 s later.
    let (start, end) = (1_795_465_560_000, 1_795_465_712_000);
    let mut job = test_kit::flinkfake::FakeJob::new("FAILED", start, end);
    job.root_exception = Some(
        "java.lang.NumberFormatException: For input string: \"x\"\n\tat Job.parse(Job.java:7)"
            .into(),
    );
    let flink = test_kit::flinkfake::FlinkFake::with_jobs([(id.to_string(), job)].into());
    let mut s = Scenario::new(&flink.serve().await, &[]).await;
    s.syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config(),
        &bus.name,
        "flink-job-sync",
    )));
    s.insert(
        doc! {"job_id": "tpl-42-1730444400", "status": "RUNNING", "flink_job_id": id,
        "flink_state": "RUNNING", "submitted_at": to_bson_date(chrono::Utc::now())},
    )
    .await;
    let before = chrono::Utc::now() - chrono::Duration::milliseconds(1);
    let summary = s.sync().await;
    let after = chrono::Utc::now();
    // The state change, and the ended job's health verdict (not routed here).
    assert_eq!(
        (summary.events_published, summary.events_pending),
        (2, 0),
        "{summary:?}"
    );
    let events = bus.received(1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    let r = s.record("tpl-42-1730444400").await;
    let revision = r.get_i64("revision").unwrap_or_else(|e| panic!("{e}: {r}"));
    let event_id = format!("tpl-42-1730444400:{revision}");
    assert_eq!(e["source"], "flink-job-sync");
    assert_eq!(e["detail-type"], "Flink Job State Change");
    assert_eq!(
        e["resources"],
        serde_json::json!([format!("flink-job-sync:event/{event_id}")]),
        "{e}"
    );
    let d = &e["detail"];
    assert_eq!(keys(d), STATE_CHANGE_KEYS, "{d}");
    assert_eq!(d["event_id"], event_id);
    assert_eq!(d["job_id"], "tpl-42-1730444400");
    assert_eq!(d["flink_job_id"], id);
    assert_eq!(d["previous_status"], "RUNNING");
    assert_eq!(d["status"], "FAILED");
    assert_eq!(d["flink_state"], "FAILED");
    let reason = d["status_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("java.lang.NumberFormatException: For input string: \"x\""),
        "Flink's root cause: {d}"
    );
    assert_eq!(r.get_str("status_reason").ok(), Some(reason), "{r}");
    assert_eq!(d["start_time"], "2026-11-23T20:26:00Z");
    assert_eq!(d["end_time"], "2026-11-23T20:28:32Z");
    assert_eq!(d["duration"], serde_json::json!(152.0));
    assert_eq!(d["learned_from"], "flink");
    let at = d["transition_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("transition_at is not RFC 3339: {d}"));
    assert!(
        d["transition_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
            && before <= at
            && at <= after,
        "the run's time, in UTC: {d} (run from {before} to {after})"
    );
}

#[tokio::test]
async fn a_job_no_record_claims_reaches_a_rule_once_as_flink_job_untracked() {
    let bus = bus_for(&["Flink Job Untracked"]).await;
    let id = "0a7ac0ed000000000000000000000001";
    let start = chrono::Utc::now().timestamp_millis() - 60_000;
    let flink = test_kit::flinkfake::FlinkFake::with_jobs(
        [(
            id.to_string(),
            test_kit::flinkfake::FakeJob::new("RUNNING", start, -1),
        )]
        .into(),
    );
    let mut s = Scenario::new(&flink.serve().await, &[]).await;
    s.syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config(),
        &bus.name,
        "flink-job-sync",
    )));
    let first = s.sync().await;
    assert_eq!(first.untracked_count, 1, "{first:?}");
    assert_eq!(first.events_published, 1, "{first:?}");
    let again = s.sync().await;
    assert_eq!(
        (again.untracked_count, again.events_published),
        (1, 0),
        "still untracked, announced once: {again:?}"
    );
    let events = bus.received(1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    let event_id = format!("untracked:default/{id}");
    assert_eq!(e["source"], "flink-job-sync");
    assert_eq!(e["detail-type"], "Flink Job Untracked");
    assert_eq!(
        e["resources"],
        serde_json::json!([format!("flink-job-sync:event/{event_id}")]),
        "{e}"
    );
    assert_eq!(
        e["detail"],
        serde_json::json!({"event_id": event_id, "cluster": "default",
            "flink_job_id": id, "name": "fake", "state": "RUNNING"}),
        "the README's keys, and only them"
    );
}

#[tokio::test]
async fn an_event_accepted_before_mongodb_is_cut_is_sent_again_with_the_same_event_id() {
    use test_kit::faultproxy::{Fault, FaultProxy};
    // Every event of the fleet (state and health changes) reaches the queue.
    let bus = bus_for(&["Flink Job State Change", "Flink Job Health Change"]).await;
    let rig = test_kit::faultrig::Rig::new().await;
    let endpoint = test_kit::aws::endpoint();
    let moto = FaultProxy::in_front_of(&endpoint).await;
    // Health looks only at jobs that just ended: the second run makes no
    // event of its own (a job that learned its JobID would get its first
    // health verdict there).
    let mut syncer = rig.syncer(&[("HEALTH_BUDGET", "0")]).await;
    syncer.set_events(Some(Publisher::new(
        &test_kit::aws::sdk_config_at(&moto.url_for(&endpoint)),
        &bus.name,
        "flink-job-sync",
    )));
    // EventBridge takes the events, its answer is held; MongoDB is cut
    // before the answer comes, so the acknowledgement cannot be written.
    moto.set(Fault::Hold).await;
    let req = flink_job_sync::runs::sync::SyncRequest::default();
    let (first, mut delivered) = tokio::join!(syncer.run(&req), async {
        let taken = bus.received(1).await;
        rig.mongo_proxy.set(Fault::Down).await;
        moto.set(Fault::Pass).await;
        taken
    });
    let first = first.unwrap_or_else(|e| panic!("the run ends, its end unrecorded: {e}"));
    assert!(
        first.events_published >= 8
            && first
                .event_errors
                .iter()
                .any(|e| e.contains("acknowledging published events")),
        "accepted, and the acknowledgement failed: {first:?}"
    );
    let rest = first.events_published.saturating_sub(delivered.len());
    delivered.extend(bus.received(rest).await);
    let still_pending: usize = rig
        .snapshot()
        .await
        .values()
        .map(|r| r.get_array("pending_events").map_or(0, Vec::len))
        .sum();
    assert_eq!(
        still_pending, first.events_published,
        "accepted but still stored in their records"
    );
    rig.mongo_proxy.set(Fault::Pass).await;
    let second = syncer
        .run(&req)
        .await
        .unwrap_or_else(|e| panic!("MongoDB is back: {e}"));
    assert_eq!(
        (second.events_published, second.events_pending),
        (first.events_published, 0),
        "{second:?}"
    );
    assert!(second.event_errors.is_empty(), "{second:?}");
    let again = bus.received(second.events_published).await;
    let by_id =
        |events: &[serde_json::Value]| -> std::collections::BTreeMap<String, serde_json::Value> {
            events
                .iter()
                .map(|e| {
                    let id = e["detail"]["event_id"].as_str().unwrap_or_default();
                    (id.to_string(), e["detail"].clone())
                })
                .collect()
        };
    let (delivered, again) = (by_id(&delivered), by_id(&again));
    assert_eq!(
        delivered.len(),
        first.events_published,
        "ids unique per event"
    );
    assert_eq!(
        again, delivered,
        "each event sent again with the same event_id and detail"
    );
    let third = syncer.run(&req).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(third.events_published, 0, "acknowledged at last: {third:?}");
    assert!(bus.drain().await.is_empty(), "nothing sent a third time");
}

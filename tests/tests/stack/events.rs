//! State-change events through moto's EventBridge: a rule with an SQS target
//! receives exactly one event per transition, also when EventBridge was down
//! when the transition happened.

use std::collections::HashMap;

use flink_job_sync::adapters::events::Publisher;
use flink_job_sync::adapters::store::record::to_bson_date;
use mongodb::bson::doc;
use test_kit::scenario::{JobState, Scenario};
use test_kit::stack::{Stack, unique_name};

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

fn failing_record(job_id: &str) -> mongodb::bson::Document {
    doc! {"job_id": job_id, "status": "CREATED", "flink_job_id": null, "submitted_at": to_bson_date(chrono::Utc::now())}
}

#[tokio::test]
async fn each_transition_is_announced_exactly_once() {
    let stack = Stack::from_env();
    let bus = bus().await;
    let mut s = Scenario::new(&stack.flink_rest_url(), &[]).await;
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
    let stack = Stack::from_env();
    let bus = bus().await;
    let mut s = Scenario::new(&stack.flink_rest_url(), &[]).await;
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
    let stack = Stack::from_env();
    let bus = bus().await;
    let endpoint = test_kit::aws::endpoint();
    let proxy = test_kit::faultproxy::FaultProxy::in_front_of(&endpoint).await;
    proxy
        .set(test_kit::faultproxy::Fault::Http(
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into(),
        ))
        .await;
    let mut s = Scenario::new(&stack.flink_rest_url(), &[]).await;
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
    let stack = Stack::from_env();
    let (url, taken) = half_deaf_eventbridge().await;
    let mut s = Scenario::new(&stack.flink_rest_url(), &[]).await;
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

//! State-change events on EventBridge, in the shape AWS services use for their
//! own: source `flink-job-sync`, detail-type `Flink Job State Change`.
//!
//! No transition is lost and none is announced that did not happen: the event
//! is stored in the record (`pending_events`) by the same conditional write
//! that makes the transition, published after, and pulled from the record
//! once EventBridge accepted it. Whatever is left pending is published by the
//! next run. Each event carries a stable `event_id` for consumers to
//! de-duplicate (a crash between acceptance and the pull republishes it).

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};

use crate::rules::model::{Record, Untracked, to_bson_date};
use crate::rules::plan::{Change, Plan};

/// The `detail-type` of a status change.
pub const DETAIL_TYPE: &str = "Flink Job State Change";
/// The `detail-type` of a health change.
pub const HEALTH_DETAIL_TYPE: &str = "Flink Job Health Change";
/// PutEvents takes at most 10 entries and 256 KiB per call.
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The event for a plan's transition, to store with it; `None` without one.
/// `revision` is the record's revision after the write, which makes the id
/// unique per transition and stable across retries.
pub fn pending_event(
    record: &Record,
    plan: &Plan,
    revision: i64,
    now: DateTime<Utc>,
) -> Option<Document> {
    let (from, to, source) = plan.transition()?;
    let mut detail = doc! {
        "job_id": &record.job_id,
        "flink_job_id": record.flink_job_id.as_ref().map(|i| i.to_string()),
        "previous_status": from.as_str(),
        "status": to.as_str(),
        "flink_state": record.flink_state.clone(),
        "status_reason": record.status_reason.clone(),
        "start_time": record.start_time.map(to_bson_date),
        "end_time": record.end_time.map(to_bson_date),
        "duration": record.duration,
        "transition_at": to_bson_date(now),
        "learned_from": source.as_str(),
    };
    for change in &plan.changes {
        match change {
            Change::FlinkJobId { first, .. } => detail.insert("flink_job_id", first.as_str()),
            Change::FlinkState(s) => detail.insert("flink_state", s.as_str()),
            Change::StatusReason(r) => detail.insert("status_reason", r.as_str()),
            Change::StartTime(t) => detail.insert("start_time", to_bson_date(*t)),
            Change::EndTime(t) => detail.insert("end_time", to_bson_date(*t)),
            Change::Duration(d) => detail.insert("duration", *d),
            _ => None,
        };
    }
    let event_id = format!("{}:{revision}", record.job_id);
    detail.insert("event_id", &event_id);
    Some(doc! {"event_id": event_id, "detail": detail})
}

/// The event for a plan's health change, to store with it; `None` without
/// one. Its id is the transition's with `:health`, as both may come in one write.
pub fn pending_health_event(
    record: &Record,
    plan: &Plan,
    revision: i64,
    now: DateTime<Utc>,
) -> Option<Document> {
    let (from, to, reasons) = plan.changes.iter().find_map(|c| match c {
        Change::Health { from, to, reasons } => Some((from, to, reasons)),
        _ => None,
    })?;
    let event_id = format!("{}:{revision}:health", record.job_id);
    let reasons: Vec<Bson> = reasons
        .iter()
        .map(|r| Bson::Document(doc! {"code": &r.code, "message": &r.message}))
        .collect();
    let detail = doc! {
        "event_id": &event_id,
        "job_id": &record.job_id,
        "flink_job_id": record.flink_job_id.as_ref().map(|i| i.to_string()),
        // The status this same write leaves the record in.
        "status": plan.transition().map_or(record.status, |(_, to, _)| to).as_str(),
        "previous_health": from.map(|h| h.as_str()),
        "health": to.as_str(),
        "health_reasons": reasons,
        "changed_at": to_bson_date(now),
    };
    Some(doc! {"event_id": event_id, "detail_type": HEALTH_DETAIL_TYPE, "detail": detail})
}

/// The `detail-type` of a job no record claims.
pub const UNTRACKED_DETAIL_TYPE: &str = "Flink Job Untracked";

/// The event id of an untracked job's one announcement.
pub fn untracked_event_id(job: &Untracked) -> String {
    format!("untracked:{}", job.key())
}

/// The announcement of a job a cluster runs that no record claims.
pub fn untracked_event(job: &Untracked) -> Pending {
    let event_id = untracked_event_id(job);
    Pending {
        oid: Bson::String(job.key()),
        detail: serde_json::json!({"event_id": event_id, "cluster": job.cluster,
            "flink_job_id": job.flink_job_id, "name": job.name, "state": job.state}),
        event_id,
        detail_type: UNTRACKED_DETAIL_TYPE.to_string(),
    }
}

/// The event's `detail` as EventBridge JSON: dates as RFC 3339 strings.
pub fn detail_json(detail: &Document) -> serde_json::Value {
    serde_json::Value::Object(
        detail
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect(),
    )
}

fn value_json(v: &Bson) -> serde_json::Value {
    match v {
        Bson::DateTime(d) => {
            serde_json::Value::String(d.try_to_rfc3339_string().unwrap_or_default())
        }
        Bson::Null => serde_json::Value::Null,
        Bson::String(s) => serde_json::Value::String(s.clone()),
        Bson::Double(x) => serde_json::json!(x),
        Bson::Int32(x) => serde_json::json!(x),
        Bson::Int64(x) => serde_json::json!(x),
        Bson::Boolean(b) => serde_json::Value::Bool(*b),
        Bson::Array(a) => serde_json::Value::Array(a.iter().map(value_json).collect()),
        Bson::Document(d) => detail_json(d),
        other => serde_json::Value::String(other.to_string()),
    }
}

/// An event left pending in a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The `_id` of the record the event is stored in.
    pub oid: Bson,
    /// Stable per transition: consumers drop repeats by it.
    pub event_id: String,
    /// The event's `detail`, as published.
    pub detail: serde_json::Value,
    /// Its `detail-type`: [`DETAIL_TYPE`] or [`HEALTH_DETAIL_TYPE`].
    pub detail_type: String,
}

/// Splits events into PutEvents calls: at most 10 entries and 256 KiB each.
pub fn batches(events: &[Pending]) -> Vec<&[Pending]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in events.iter().enumerate() {
        let size = e.detail.to_string().len() + e.detail_type.len() + 64;
        if i > start && (i - start == MAX_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            out.push(&events[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < events.len() {
        out.push(&events[start..]);
    }
    out
}

/// Publishes state-change events to one bus.
pub struct Publisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
    source: String,
}

impl Publisher {
    /// The publisher the settings ask for: none without `EVENT_BUS_NAME`.
    pub fn from_settings(
        sdk: &aws_config::SdkConfig,
        settings: &crate::config::EventSettings,
    ) -> Option<Publisher> {
        let bus = settings.bus_name.as_deref()?;
        Some(Publisher::new(sdk, bus, &settings.source))
    }

    /// A publisher to `bus` with `source` as the events' source.
    pub fn new(sdk: &aws_config::SdkConfig, bus: &str, source: &str) -> Publisher {
        Publisher {
            client: aws_sdk_eventbridge::Client::new(sdk),
            bus: bus.to_string(),
            source: source.to_string(),
        }
    }

    /// Publishes, and returns the ids EventBridge accepted; the rest stay
    /// pending. An error that fails a whole call fails only that call's events.
    pub async fn publish(&self, events: &[Pending]) -> (Vec<String>, Vec<String>) {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let mut accepted = Vec::new();
        let mut errors = Vec::new();
        for batch in batches(events) {
            let entries: Vec<PutEventsRequestEntry> = batch
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(&self.source)
                        .detail_type(&e.detail_type)
                        .detail(e.detail.to_string())
                        .resources(format!("flink-job-sync:event/{}", e.event_id))
                        .build()
                })
                .collect();
            match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Err(e) => errors.push(format!(
                    "PutEvents: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                )),
                Ok(out) => {
                    for (event, result) in batch.iter().zip(out.entries()) {
                        match result.error_code() {
                            None if result.event_id().is_some() => {
                                accepted.push(event.event_id.clone())
                            }
                            code => errors.push(format!(
                                "PutEvents entry {}: {} {}",
                                event.event_id,
                                code.unwrap_or("no event id"),
                                result.error_message().unwrap_or_default()
                            )),
                        }
                    }
                }
            }
        }
        (accepted, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: usize, size: usize) -> Vec<Pending> {
        (0..n)
            .map(|i| Pending {
                oid: Bson::Int32(i as i32),
                event_id: format!("j{i}:1"),
                detail: serde_json::json!({"status_reason": "x".repeat(size)}),
                detail_type: DETAIL_TYPE.to_string(),
            })
            .collect()
    }

    #[test]
    fn batches_hold_at_most_ten_entries() {
        let events = pending(23, 10);
        let sizes: Vec<usize> = batches(&events).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);
    }

    #[test]
    fn batches_stay_under_256_kib() {
        let events = pending(5, 100 * 1024);
        let sizes: Vec<usize> = batches(&events).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert!(batches(&[]).is_empty());
    }
}

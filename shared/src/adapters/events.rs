//! State-change events on EventBridge, in the shape AWS services use for their
//! own: source `flink-job-sync`, detail-type `Flink Job State Change`.
//!
//! No transition is lost and none is announced that did not happen: the event
//! is stored in the record (`pending_events`) by the same conditional write
//! that makes the transition, published after, and pulled from the record
//! once EventBridge accepted it. Whatever is left pending is published by the
//! next run. Each event carries a stable `event_id` for consumers to
//! de-duplicate (a crash between acceptance and the pull republishes it).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::rules::model::Untracked;
use crate::rules::plan::{Change, Plan};
use crate::rules::record::{Record, RecordId};

/// The `detail-type` of a status change.
pub const DETAIL_TYPE: &str = "Flink Job State Change";
/// The `detail-type` of a health change.
pub const HEALTH_DETAIL_TYPE: &str = "Flink Job Health Change";
/// PutEvents takes at most 10 entries and 256 KiB per call.
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A time as the events carry it: RFC 3339 in UTC, to the millisecond
/// MongoDB keeps (`2026-11-23T12:06:00Z`).
pub fn time(t: DateTime<Utc>) -> Value {
    let ms = DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t);
    Value::String(ms.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// The event for a plan's transition, to store with it; `None` without one.
/// `revision` is the record's revision after the write, which makes the id
/// unique per transition and stable across retries.
pub fn pending_event(
    record: &Record,
    plan: &Plan,
    revision: i64,
    now: DateTime<Utc>,
) -> Option<Pending> {
    let (from, to, source) = plan.transition()?;
    let event_id = format!("{}:{revision}", record.job_id);
    let mut detail = json!({
        "job_id": &record.job_id,
        "flink_job_id": record.flink_job_id.as_ref().map(|i| i.to_string()),
        "previous_status": from.as_str(),
        "status": to.as_str(),
        "flink_state": record.flink_state.as_ref().map(|s| s.to_string()),
        "status_reason": record.status_reason.clone(),
        "start_time": record.start_time.map(time),
        "end_time": record.end_time.map(time),
        "duration": record.duration,
        "transition_at": time(now),
        "learned_from": source.as_str(),
    });
    for change in &plan.changes {
        let (key, value) = match change {
            Change::FlinkJobId { first, .. } => ("flink_job_id", json!(first.as_str())),
            Change::FlinkState(s) => ("flink_state", json!(s.as_str())),
            Change::StatusReason(r) => ("status_reason", json!(r)),
            Change::StartTime(t) => ("start_time", time(*t)),
            Change::EndTime(t) => ("end_time", time(*t)),
            Change::Duration(d) => ("duration", json!(d)),
            _ => continue,
        };
        detail[key] = value;
    }
    detail["event_id"] = json!(event_id);
    Some(Pending {
        record: Some(record.oid.clone()),
        event_id,
        detail,
        detail_type: DETAIL_TYPE.to_string(),
    })
}

/// The event for a plan's health change, to store with it; `None` without
/// one. Its id is the transition's with `:health`, as both may come in one write.
pub fn pending_health_event(
    record: &Record,
    plan: &Plan,
    revision: i64,
    now: DateTime<Utc>,
) -> Option<Pending> {
    let (from, to, reasons) = plan.changes.iter().find_map(|c| match c {
        Change::Health { from, to, reasons } => Some((from, to, reasons)),
        _ => None,
    })?;
    let event_id = format!("{}:{revision}:health", record.job_id);
    let reasons: Vec<Value> = reasons
        .iter()
        .map(|r| json!({"code": &r.code, "message": &r.message}))
        .collect();
    let detail = json!({
        "event_id": &event_id,
        "job_id": &record.job_id,
        "flink_job_id": record.flink_job_id.as_ref().map(|i| i.to_string()),
        // The status this same write leaves the record in.
        "status": plan.transition().map_or(record.status, |(_, to, _)| to).as_str(),
        "previous_health": from.map(|h| h.as_str()),
        "health": to.as_str(),
        "health_reasons": reasons,
        "changed_at": time(now),
    });
    Some(Pending {
        record: Some(record.oid.clone()),
        event_id,
        detail,
        detail_type: HEALTH_DETAIL_TYPE.to_string(),
    })
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
        record: None,
        detail: json!({"event_id": event_id, "cluster": job.cluster,
            "flink_job_id": job.flink_job_id, "name": job.name, "state": job.state}),
        event_id,
        detail_type: UNTRACKED_DETAIL_TYPE.to_string(),
    }
}

/// An event to publish: stored in its record until EventBridge accepts it
/// (an untracked job's announcement is in no record).
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The record the event is stored in.
    pub record: Option<RecordId>,
    /// Stable per transition: consumers drop repeats by it.
    pub event_id: String,
    /// The event's `detail`, as published.
    pub detail: Value,
    /// Its `detail-type`: [`DETAIL_TYPE`], [`HEALTH_DETAIL_TYPE`] or [`UNTRACKED_DETAIL_TYPE`].
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
                record: Some(RecordId::Int32(i as i32)),
                event_id: format!("j{i}:1"),
                detail: serde_json::json!({"status_reason": "x".repeat(size)}),
                detail_type: DETAIL_TYPE.to_string(),
            })
            .collect()
    }

    #[test]
    fn event_times_are_utc_to_the_millisecond() {
        let at = |ms| DateTime::from_timestamp_millis(ms).expect("a time");
        assert_eq!(time(at(1_795_465_560_000)), "2026-11-23T20:26:00Z");
        assert_eq!(time(at(1_795_465_560_120)), "2026-11-23T20:26:00.120Z");
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

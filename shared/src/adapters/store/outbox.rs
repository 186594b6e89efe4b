//! The outbox: events stored in their record by the write that makes the
//! change (`pending_events`), read back for publishing, and pulled from the
//! record once EventBridge accepted them. Whatever is left is published by
//! the next run (see [`crate::adapters::events`]).

use std::collections::HashSet;

use mongodb::bson::{Bson, Document, doc};
use mongodb::{Collection, Database};

use crate::adapters::events::{DETAIL_TYPE, Pending};
use crate::adapters::store::cursor::{BATCH, each_doc};
use crate::adapters::store::record::{id_bson, record_id};
use crate::error::Error;

/// The events waiting in records.
pub struct Outbox {
    db: Database,
    records: Collection<Document>,
}

/// An event as stored in `pending_events`.
pub fn event_document(e: &Pending) -> Document {
    let detail = match mongodb::bson::to_bson(&e.detail) {
        Ok(Bson::Document(d)) => d,
        _ => Document::new(),
    };
    doc! {"event_id": &e.event_id, "detail_type": &e.detail_type, "detail": detail}
}

impl Outbox {
    pub(crate) fn new(db: Database, records: Collection<Document>) -> Outbox {
        Outbox { db, records }
    }

    /// Events left pending in any record (final ones included).
    pub async fn pending(&self) -> Result<Vec<Pending>, Error> {
        const CONTEXT: &str = "reading pending events";
        let cursor = self
            .records
            .find(doc! {"pending_events.event_id": {"$exists": true}})
            .projection(doc! {"pending_events": 1})
            .await
            .map_err(Error::mongo(CONTEXT))?;
        let mut out = Vec::new();
        each_doc(cursor, CONTEXT, |d| {
            let record = d.get("_id").map(record_id);
            let events = d
                .get_array("pending_events")
                .into_iter()
                .flatten()
                .filter_map(Bson::as_document);
            for e in events {
                if let (Ok(event_id), Ok(detail)) =
                    (e.get_str("event_id"), e.get_document("detail"))
                {
                    out.push(Pending {
                        record: record.clone(),
                        event_id: event_id.to_string(),
                        detail: detail_json(detail),
                        detail_type: e.get_str("detail_type").unwrap_or(DETAIL_TYPE).to_string(),
                    });
                }
            }
        })
        .await?;
        Ok(out)
    }

    /// Removes the events EventBridge accepted from their records.
    pub async fn ack(&self, events: &[Pending], accepted: &[String]) -> Result<(), Error> {
        let accepted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
        let mut by_record: Vec<(Bson, Vec<&str>)> = Vec::new();
        for e in events
            .iter()
            .filter(|e| accepted.contains(e.event_id.as_str()))
        {
            let Some(record) = &e.record else { continue };
            let oid = id_bson(record);
            match by_record.iter_mut().find(|(o, _)| *o == oid) {
                Some((_, ids)) => ids.push(&e.event_id),
                None => by_record.push((oid, vec![&e.event_id])),
            }
        }
        for chunk in by_record.chunks(BATCH) {
            let statements: Vec<Document> = chunk
                .iter()
                .map(|(oid, ids)| {
                    doc! {"q": {"_id": oid.clone()}, "u": {"$pull": {"pending_events": {"event_id": {"$in": ids.clone()}}}}}
                })
                .collect();
            self.db
                .run_command(
                    doc! {"update": self.records.name(), "updates": statements, "ordered": false},
                )
                .await
                .map_err(Error::mongo("acknowledging published events"))?;
        }
        Ok(())
    }
}

/// A stored event's `detail` as EventBridge JSON: dates as RFC 3339 strings
/// (events stored before detail was kept as JSON hold BSON dates).
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

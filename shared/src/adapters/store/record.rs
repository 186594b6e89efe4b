//! A `flink_jobs` document as sync reads it (`RecordDoc`, whose fields are
//! also the projection of the read), and its conversion into the rules'
//! [`Record`]: strict about what sync relies on (a field of the wrong type,
//! an unknown status, a name that cannot be a Kubernetes name make the
//! record malformed), tolerant of what sync owns itself. Also the BSON forms
//! of the rules' values that writes and filters need.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use mongodb::bson::{Bson, Document, doc};
use serde::{Deserialize, Deserializer};

use crate::rules::model::{
    ClusterRef, FlinkJobId, FlinkState, Health, Status, is_dns_label, is_dns_subdomain, truncate,
};
use crate::rules::record::{MalformedRecord, Record, RecordId, Retention, StoredCheckpoint};

/// One field as stored: `None` when absent, `Some(Bson::Null)` when null,
/// so a report can say which.
#[derive(Debug, Default)]
struct Field(Option<Bson>);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Bson::deserialize(d).map(|b| Field(Some(b)))
    }
}

impl Field {
    fn get(&self) -> Option<&Bson> {
        self.0.as_ref()
    }
}

/// The fields sync reads; everything else in a record is neither read nor
/// written. The read's projection is these names ([`projection`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RecordDoc {
    #[serde(rename = "_id")]
    id: Field,
    job_id: Field,
    status: Field,
    flink_job_id: Field,
    submitted_at: Field,
    k8s_job_name: Field,
    k8s_namespace: Field,
    flink_state: Field,
    flink_cluster: Field,
    flink_job_ids: Field,
    flink_jobs_state: Field,
    start_time: Field,
    end_time: Field,
    duration: Field,
    status_reason: Field,
    sync_error: Field,
    flink_missing_count: Field,
    revision: Field,
    health: Field,
    health_reasons: Field,
    health_checked_at: Field,
    restarts: Field,
    restart_samples: Field,
    submitter_restarts: Field,
    checkpoint: Field,
    restart_point: Field,
    restart_point_reason: Field,
}

/// The projection of the records read: `RecordDoc`'s field names, as
/// serde knows them (so the two cannot drift apart).
pub fn projection() -> Document {
    let mut names: &'static [&'static str] = &[];
    // The only way serde tells a struct's field names is to ask the type to
    // deserialize itself: this deserializer notes them and stops.
    let _ = RecordDoc::deserialize(FieldNames(&mut names));
    names
        .iter()
        .map(|n| (n.to_string(), Bson::Int32(1)))
        .collect()
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("only the field names are read"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("only the field names are read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Reads a stored document as a record, or says what makes it malformed.
pub fn record_from_document(doc: &Document) -> Result<Record, MalformedRecord> {
    let parsed: RecordDoc =
        mongodb::bson::from_document(doc.clone()).map_err(|e| MalformedRecord {
            id: "(unreadable)".to_string(),
            problem: e.to_string(),
        })?;
    parsed.into_record()
}

impl RecordDoc {
    /// The record this document holds, or what makes it malformed.
    pub(crate) fn into_record(self) -> Result<Record, MalformedRecord> {
        let oid = self.id.get().cloned().unwrap_or(Bson::Null);
        let job_id = match self.job_id.get() {
            Some(Bson::String(s)) if !s.is_empty() => s.clone(),
            other => {
                return Err(MalformedRecord {
                    id: format!("_id {}", display_id(&oid)),
                    problem: format!(
                        "job_id must be a non-empty string, found {}",
                        bson_kind(other)
                    ),
                });
            }
        };
        // A report goes to logs and the runs collection: however long the
        // stored values, it stays short.
        let id = format!("job_id {:?}", truncate(&job_id, 80));
        let f = Fields { id: &id };
        // Checked in this order, so a record with several faults reports the same one.
        let status = f.status(self.status.get())?;
        let (flink_job_id, flink_job_id_empty) = f.flink_job_id(self.flink_job_id.get())?;
        let mut r = Record::new(record_id(&oid), job_id, status);
        r.flink_job_id = flink_job_id;
        r.flink_job_id_empty = flink_job_id_empty;
        r.k8s_job_name = f.name(
            "k8s_job_name",
            self.k8s_job_name.get(),
            is_dns_subdomain,
            "a Kubernetes name",
        )?;
        r.k8s_namespace = f.name(
            "k8s_namespace",
            self.k8s_namespace.get(),
            is_dns_label,
            "a Kubernetes namespace",
        )?;
        r.submitted_at = f.date("submitted_at", self.submitted_at.get())?;
        r.flink_state = f
            .string("flink_state", self.flink_state.get())?
            .map(|s| FlinkState::parse(&s));
        r.flink_cluster = match f.string("flink_cluster", self.flink_cluster.get())? {
            None => ClusterRef::Default,
            Some(name) => ClusterRef::Named(name),
        };
        r.start_time = f.date("start_time", self.start_time.get())?;
        r.end_time = f.date("end_time", self.end_time.get())?;
        r.duration = f.number("duration", self.duration.get())?;
        r.status_reason = f.string("status_reason", self.status_reason.get())?;
        r.sync_error = f.string("sync_error", self.sync_error.get())?;
        r.revision = f.integer("revision", self.revision.get())?;
        self.owned_by_sync(&mut r);
        Ok(r)
    }

    /// The fields sync writes itself, read leniently: anything unreadable
    /// counts as unset and is rewritten by the next look.
    fn owned_by_sync(self, r: &mut Record) {
        r.flink_job_ids = array(self.flink_job_ids.get())
            .filter_map(|v| FlinkJobId::parse(v.as_str()?))
            .collect();
        r.flink_jobs_state = match self.flink_jobs_state.get() {
            Some(Bson::Document(d)) => Some(
                d.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            _ => None,
        };
        r.flink_missing_count = match self.flink_missing_count.get() {
            Some(Bson::Int32(i)) => u32::try_from(*i).unwrap_or(0),
            Some(Bson::Int64(i)) => u32::try_from(*i).unwrap_or(0),
            _ => 0,
        };
        r.health = self
            .health
            .get()
            .and_then(Bson::as_str)
            .and_then(Health::parse);
        r.health_codes = array(self.health_reasons.get())
            .filter_map(|h| h.as_document()?.get_str("code").ok())
            .map(str::to_string)
            .collect();
        r.health_checked_at = self.health_checked_at.get().and_then(parse_date);
        r.restarts = whole(self.restarts.get());
        r.restart_samples = array(self.restart_samples.get())
            .filter_map(|s| {
                let pair = s.as_array()?;
                Some((parse_date(pair.first()?)?, whole(pair.get(1))?))
            })
            .collect();
        r.submitter_restarts =
            whole(self.submitter_restarts.get()).and_then(|n| u32::try_from(n).ok());
        r.checkpoint = match self.checkpoint.get() {
            Some(Bson::Document(d)) => Some(Box::new(stored_checkpoint(d))),
            _ => None,
        };
        r.restart_point = self
            .restart_point
            .get()
            .and_then(Bson::as_str)
            .map(str::to_string);
    }
}

fn array(v: Option<&Bson>) -> impl Iterator<Item = &Bson> {
    v.and_then(Bson::as_array).into_iter().flatten()
}

/// A stored document's fields read one by one; every problem names the record.
struct Fields<'a> {
    id: &'a str,
}

impl Fields<'_> {
    fn bad(&self, problem: String) -> MalformedRecord {
        MalformedRecord {
            id: self.id.to_string(),
            problem,
        }
    }

    fn status(&self, v: Option<&Bson>) -> Result<Status, MalformedRecord> {
        match v {
            Some(Bson::String(s)) => Status::parse(s)
                .ok_or_else(|| self.bad(format!("unknown status {:?}", truncate(s, 40)))),
            other => Err(self.bad(format!(
                "status must be a string, found {}",
                bson_kind(other)
            ))),
        }
    }

    /// The JobID, and whether it is stored as `""` (the conditional write
    /// must match what is stored).
    fn flink_job_id(
        &self,
        v: Option<&Bson>,
    ) -> Result<(Option<FlinkJobId>, bool), MalformedRecord> {
        match v.unwrap_or(&Bson::Null) {
            Bson::Null => Ok((None, false)),
            Bson::String(s) if s.is_empty() => Ok((None, true)),
            Bson::String(s) => FlinkJobId::parse(s)
                .map(|id| (Some(id), false))
                .ok_or_else(|| {
                    self.bad(format!(
                        "flink_job_id {:?} is not 32 lowercase hex digits",
                        truncate(s, 80)
                    ))
                }),
            other => Err(self.bad(format!(
                "flink_job_id must be a string or null, found {}",
                bson_kind(Some(other))
            ))),
        }
    }

    fn string(&self, field: &str, v: Option<&Bson>) -> Result<Option<String>, MalformedRecord> {
        match v {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s.clone())),
            other => Err(self.bad(format!(
                "{field} must be a string, found {}",
                bson_kind(other)
            ))),
        }
    }

    /// A string that goes into a Kubernetes URL, so it must pass `valid`.
    fn name(
        &self,
        field: &str,
        v: Option<&Bson>,
        valid: fn(&str) -> bool,
        what: &str,
    ) -> Result<Option<String>, MalformedRecord> {
        match self.string(field, v)? {
            Some(name) if !valid(&name) => {
                Err(self.bad(format!("{field} {:?} is not {what}", truncate(&name, 80))))
            }
            name => Ok(name),
        }
    }

    fn date(
        &self,
        field: &str,
        v: Option<&Bson>,
    ) -> Result<Option<DateTime<Utc>>, MalformedRecord> {
        match v {
            None | Some(Bson::Null) => Ok(None),
            Some(v) => parse_date(v)
                .map(Some)
                .ok_or_else(|| self.bad(format!("{field} is not a date: {}", bson_kind(Some(v))))),
        }
    }

    fn number(&self, field: &str, v: Option<&Bson>) -> Result<Option<f64>, MalformedRecord> {
        match v {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::Double(d)) => Ok(Some(*d)),
            Some(Bson::Int32(i)) => Ok(Some(f64::from(*i))),
            Some(Bson::Int64(i)) => Ok(Some(*i as f64)),
            other => Err(self.bad(format!(
                "{field} must be a number, found {}",
                bson_kind(other)
            ))),
        }
    }

    fn integer(&self, field: &str, v: Option<&Bson>) -> Result<Option<i64>, MalformedRecord> {
        match v {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::Int64(i)) => Ok(Some(*i)),
            Some(Bson::Int32(i)) => Ok(Some(i64::from(*i))),
            other => Err(self.bad(format!(
                "{field} must be an integer, found {}",
                bson_kind(other)
            ))),
        }
    }
}

/// A stored `checkpoint`, read leniently (sync's own field).
fn stored_checkpoint(d: &Document) -> StoredCheckpoint {
    let text = |k: &str| d.get_str(k).ok().map(str::to_string);
    let date = |k: &str| d.get(k).and_then(parse_date);
    StoredCheckpoint {
        last_completed_id: whole(d.get("last_completed_id")),
        last_completed_path: text("last_completed_path"),
        last_completed_at: date("last_completed_at"),
        last_savepoint_path: text("last_savepoint_path"),
        last_savepoint_at: date("last_savepoint_at"),
        restored_from_path: text("restored_from_path"),
        completed: whole(d.get("completed")),
        failed: whole(d.get("failed")),
        interval_ms: whole(d.get("interval_ms")),
        retention: d.get_str("retention").ok().and_then(Retention::parse),
    }
}

/// A record's `checkpoint` field as written.
pub fn checkpoint_document(c: &StoredCheckpoint) -> Document {
    let mut d = Document::new();
    if let Some(id) = c.last_completed_id {
        d.insert("last_completed_id", count(id));
    }
    if let Some(p) = &c.last_completed_path {
        d.insert("last_completed_path", p.as_str());
    }
    if let Some(at) = c.last_completed_at {
        d.insert("last_completed_at", to_bson_date(at));
    }
    if let Some(p) = &c.last_savepoint_path {
        d.insert("last_savepoint_path", p.as_str());
    }
    if let Some(at) = c.last_savepoint_at {
        d.insert("last_savepoint_at", to_bson_date(at));
    }
    if let Some(p) = &c.restored_from_path {
        d.insert("restored_from_path", p.as_str());
    }
    for (key, n) in [("completed", c.completed), ("failed", c.failed)] {
        d.insert(key, count(n.unwrap_or(0)));
    }
    if let Some(i) = c.interval_ms {
        d.insert("interval_ms", count(i));
    }
    if let Some(r) = c.retention {
        d.insert("retention", r.as_str());
    }
    d
}

/// The rules' id of a stored `_id`.
pub fn record_id(b: &Bson) -> RecordId {
    match b {
        Bson::ObjectId(o) => RecordId::ObjectId(o.bytes()),
        Bson::Int32(n) => RecordId::Int32(*n),
        Bson::Int64(n) => RecordId::Int64(*n),
        Bson::String(s) => RecordId::String(s.clone()),
        other => RecordId::Other(
            mongodb::bson::to_vec(&doc! {"_id": other.clone()})
                .unwrap_or_default()
                .into_boxed_slice(),
        ),
    }
}

/// The `_id` as stored.
pub fn id_bson(id: &RecordId) -> Bson {
    match id {
        RecordId::ObjectId(o) => Bson::ObjectId(mongodb::bson::oid::ObjectId::from_bytes(*o)),
        RecordId::Int32(n) => Bson::Int32(*n),
        RecordId::Int64(n) => Bson::Int64(*n),
        RecordId::String(s) => Bson::String(s.clone()),
        RecordId::Other(bytes) => mongodb::bson::from_slice::<Document>(bytes)
            .ok()
            .and_then(|d| d.get("_id").cloned())
            .unwrap_or(Bson::Null),
    }
}

/// A count as MongoDB stores it (Int64; saturated, never wrapped).
pub fn count(n: u64) -> Bson {
    Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Reads a BSON date, or an ISO-8601 string with or without an offset (a
/// string without one is taken as UTC, as the submitting system writes UTC).
pub fn parse_date(v: &Bson) -> Option<DateTime<Utc>> {
    match v {
        Bson::DateTime(d) => Utc.timestamp_millis_opt(d.timestamp_millis()).single(),
        Bson::String(s) => {
            let s = s.trim();
            if let Ok(d) = DateTime::parse_from_rfc3339(s) {
                return Some(d.with_timezone(&Utc));
            }
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
            ]
            .into_iter()
            .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
            .map(|n| Utc.from_utc_datetime(&n))
        }
        _ => None,
    }
}

/// A BSON date (milliseconds, as MongoDB stores them).
pub fn to_bson_date(d: DateTime<Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(d.timestamp_millis()))
}

/// A non-negative whole number, however MongoDB stored it.
pub fn whole(v: Option<&Bson>) -> Option<u64> {
    match v? {
        Bson::Int32(i) => u64::try_from(*i).ok(),
        Bson::Int64(i) => u64::try_from(*i).ok(),
        Bson::Double(d) if d.fract() == 0.0 && *d >= 0.0 && *d < 9.0e15 => Some(*d as u64),
        _ => None,
    }
}

fn display_id(id: &Bson) -> String {
    match id {
        Bson::ObjectId(o) => o.to_hex(),
        Bson::String(s) => truncate(s, 80).to_string(),
        other => truncate(&other.to_string(), 80).to_string(),
    }
}

/// What a stored value is, in words, for a malformed-record report.
fn bson_kind(v: Option<&Bson>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(Bson::Null) => "null".to_string(),
        Some(Bson::String(s)) => format!("the string {:?}", truncate(s, 40)),
        Some(other) => format!("{:?}", other.element_type()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;

    #[test]
    fn the_projection_is_every_field_a_record_is_read_from() {
        let p = projection();
        for field in [
            "_id",
            "job_id",
            "status",
            "checkpoint",
            "restart_point_reason",
        ] {
            assert_eq!(p.get_i32(field).ok(), Some(1), "{field} in {p}");
        }
        assert_eq!(p.len(), 27, "{p}");
    }

    #[test]
    fn record_with_string_dates_parses_as_utc() {
        let d = doc! {"_id": ObjectId::new(), "job_id": "j1", "status": "CREATED", "flink_job_id": null,
        "submitted_at": "2025-11-01T12:00:00", "start_time": "2025-11-01T12:00:30+08:00"};
        let r = record_from_document(&d).expect("parses");
        assert_eq!(
            r.submitted_at.map(|d| d.to_rfc3339()),
            Some("2025-11-01T12:00:00+00:00".to_string())
        );
        assert_eq!(
            r.start_time.map(|d| d.to_rfc3339()),
            Some("2025-11-01T04:00:30+00:00".to_string())
        );
        assert_eq!(r.k8s_job_name(), "j1");
    }

    #[test]
    fn malformed_records_are_named_by_job_id_or_object_id() {
        let oid = ObjectId::new();
        let e = record_from_document(&doc! {"_id": oid, "job_id": 42, "status": "CREATED"})
            .expect_err("bad job_id");
        assert!(e.id.contains(&oid.to_hex()), "{e}");
        assert!(e.problem.contains("job_id"), "{e}");
        let e = record_from_document(&doc! {"_id": oid, "job_id": null, "status": "CREATED"})
            .expect_err("null job_id");
        assert!(e.problem.ends_with("found null"), "{e}");
        let e = record_from_document(&doc! {"_id": oid, "job_id": "j", "status": "DONE"})
            .expect_err("bad status");
        assert_eq!(e.id, "job_id \"j\"");
        let e = record_from_document(
            &doc! {"job_id": "j", "status": "CREATED", "flink_job_id": "../x"},
        )
        .expect_err("bad flink id");
        assert!(e.problem.contains("32 lowercase hex"), "{e}");
        let e = record_from_document(
            &doc! {"job_id": "j", "status": "CREATED", "submitted_at": "yesterday"},
        )
        .expect_err("bad date");
        assert!(e.problem.contains("submitted_at"), "{e}");
        let e =
            record_from_document(&doc! {"job_id": "j", "status": "CREATED", "k8s_job_name": "a/b"})
                .expect_err("bad name");
        assert!(e.problem.contains("k8s_job_name"), "{e}");
    }

    #[test]
    fn an_empty_jobid_is_no_jobid_and_is_matched_as_stored() {
        let r = record_from_document(
            &doc! {"_id": 1, "job_id": "j", "status": "CREATED", "flink_job_id": ""},
        )
        .expect("parses");
        assert_eq!((r.flink_job_id, r.flink_job_id_empty), (None, true));
        let r = record_from_document(&doc! {"_id": 1, "job_id": "j", "status": "CREATED"})
            .expect("parses");
        assert_eq!((r.flink_job_id, r.flink_job_id_empty), (None, false));
    }

    #[test]
    fn every_kind_of_id_goes_back_as_it_was_stored() {
        for b in [
            Bson::ObjectId(ObjectId::new()),
            Bson::Int32(7),
            Bson::Int64(1 << 40),
            Bson::String("oid-1".into()),
            Bson::Document(doc! {"a": 1}),
            Bson::Boolean(true),
        ] {
            assert_eq!(id_bson(&record_id(&b)), b);
        }
    }

    #[test]
    fn a_stored_checkpoint_reads_back_as_written() {
        let c = StoredCheckpoint {
            last_completed_id: Some(62),
            last_completed_path: Some("file:/ck/chk-62".into()),
            last_completed_at: Utc.timestamp_millis_opt(1_795_465_704_023).single(),
            completed: Some(62),
            failed: Some(1),
            interval_ms: Some(2000),
            retention: Some(Retention::OnCancellation),
            ..Default::default()
        };
        assert_eq!(stored_checkpoint(&checkpoint_document(&c)), c);
        let stored = doc! {"_id": 1, "job_id": "j", "status": "RUNNING",
        "checkpoint": checkpoint_document(&c)};
        let r = record_from_document(&stored).expect("parses");
        assert_eq!(r.checkpoint.as_deref(), Some(&c));
        assert_eq!(r.checkpoint_failed(), Some(1));
    }
}

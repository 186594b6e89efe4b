//! Plans applied as conditional writes. A [`Write`] stays typed (the
//! record's id, what it was decided on, the changes and the events to store
//! with them) until [`Writer::apply`] turns each into a statement of an
//! `update` command. A write that no longer matches (another writer changed
//! the record) is a conflict, never an overwrite.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Collection, Database};

use crate::adapters::events::Pending;
use crate::adapters::store::cursor::{BATCH, each_doc};
use crate::adapters::store::outbox::event_document;
use crate::adapters::store::record::{
    checkpoint_document, count, id_bson, record_id, to_bson_date,
};
use crate::error::Error;
use crate::rules::health::RestartPoint;
use crate::rules::model::{FlinkJobId, Status};
use crate::rules::plan::{Change, Plan};
use crate::rules::record::{Record, RecordId};

/// Every top-level field of a record that sync's writes set, unset or push
/// (the README's "Fields sync owns"). Nothing else of a record is ever written.
pub const OWNED_FIELDS: [&str; 26] = [
    "flink_job_id",
    "flink_job_ids",
    "flink_jobs_state",
    "status",
    "flink_state",
    "start_time",
    "end_time",
    "duration",
    "status_reason",
    "sync_error",
    "flink_missing_count",
    "status_history",
    "revision",
    "last_synced_at",
    "last_sync_run",
    "health",
    "health_reasons",
    "health_history",
    "health_checked_at",
    "checkpoint",
    "restart_point",
    "restart_point_reason",
    "restarts",
    "restart_samples",
    "submitter_restarts",
    "pending_events",
];

/// What a record was decided on: the write matches the record only as it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    /// The status read.
    pub status: Status,
    /// The JobID read.
    pub flink_job_id: Option<FlinkJobId>,
    /// The JobID was stored as `""`.
    pub flink_job_id_empty: bool,
    /// The revision read (`None`: sync never wrote the record).
    pub revision: Option<i64>,
}

/// One record's conditional write, typed until it is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The record written.
    pub id: RecordId,
    /// Its `job_id`, for reports and logs.
    pub job_id: String,
    /// What the plan was decided on.
    pub guard: Guard,
    /// The changes to make.
    pub update: Vec<Change>,
    /// Events stored by the same write, published after it.
    pub events: Vec<Pending>,
    /// When the plan was decided.
    pub at: DateTime<Utc>,
}

impl Write {
    /// The write for a plan, or `None` when the plan changes nothing.
    pub fn new(record: &Record, plan: &Plan, at: DateTime<Utc>) -> Option<Write> {
        if plan.changes.is_empty() {
            return None;
        }
        Some(Write {
            id: record.oid.clone(),
            job_id: record.job_id.clone(),
            guard: Guard {
                status: record.status,
                flink_job_id: record.flink_job_id.clone(),
                flink_job_id_empty: record.flink_job_id_empty,
                revision: record.revision,
            },
            update: plan.changes.clone(),
            events: Vec::new(),
            at,
        })
    }

    /// The revision the record has once this write is applied.
    pub fn revision_after(&self) -> i64 {
        self.guard.revision.unwrap_or(0) + 1
    }
}

/// How a write came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written as planned.
    Written,
    /// The record changed meanwhile: left alone.
    Conflict,
    /// The server refused the statement, with why.
    Refused(String),
}

/// What the writes' statements carry besides their changes.
#[derive(Debug, Clone, Copy)]
pub struct WriteContext<'a> {
    /// The run writing (`last_sync_run`).
    pub run_id: &'a str,
    /// Entries kept in `status_history` and `health_history`.
    pub history_max: usize,
}

/// Conditional writes to the records collection.
pub struct Writer {
    db: Database,
    records: Collection<Document>,
}

impl Writer {
    pub(crate) fn new(db: Database, records: Collection<Document>) -> Writer {
        Writer { db, records }
    }

    /// Applies the writes in batches; returns each one's outcome, in order.
    pub async fn apply(
        &self,
        writes: &[Write],
        ctx: WriteContext<'_>,
    ) -> Result<Vec<Outcome>, Error> {
        let mut outcomes = Vec::with_capacity(writes.len());
        for batch in writes.chunks(BATCH) {
            outcomes.extend(self.apply_batch(batch, ctx).await?);
        }
        Ok(outcomes)
    }

    /// One `update` command, and which of its statements were ours.
    async fn apply_batch(
        &self,
        batch: &[Write],
        ctx: WriteContext<'_>,
    ) -> Result<Vec<Outcome>, Error> {
        let statements: Vec<Document> = batch.iter().map(|w| statement(w, ctx)).collect();
        let reply = self
            .db
            .run_command(
                doc! {"update": self.records.name(), "updates": statements, "ordered": false},
            )
            .await
            .map_err(Error::mongo("writing records"))?;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        let errors = reply.get_array("writeErrors").into_iter().flatten();
        for e in errors.filter_map(Bson::as_document) {
            let index = e
                .get_i32("index")
                .ok()
                .and_then(|i| usize::try_from(i).ok());
            if let Some(slot) = index.and_then(|i| outcomes.get_mut(i)) {
                let why = e.get_str("errmsg").unwrap_or("write error").to_string();
                *slot = Some(Outcome::Refused(why));
            }
        }
        let refused = outcomes.iter().filter(|o| o.is_some()).count();
        let matched = reply
            .get_i32("n")
            .map(i64::from)
            .or_else(|_| reply.get_i64("n"))
            .unwrap_or(0);
        // Which statements matched is not in an `update` reply: when some
        // did not, the records that carry this run's id are ours.
        let ours = if matched >= (batch.len() - refused) as i64 {
            None
        } else {
            Some(self.written_by(ctx.run_id, batch).await?)
        };
        Ok(outcomes
            .into_iter()
            .zip(batch)
            .map(|(o, w)| match (o, &ours) {
                (Some(refused), _) => refused,
                (None, None) => Outcome::Written,
                (None, Some(ours)) if ours.contains(&w.id) => Outcome::Written,
                (None, Some(_)) => Outcome::Conflict,
            })
            .collect())
    }

    /// Which of these records carry this run's id.
    async fn written_by(&self, run_id: &str, batch: &[Write]) -> Result<HashSet<RecordId>, Error> {
        const CONTEXT: &str = "checking conflicting writes";
        let ids: Vec<Bson> = batch.iter().map(|w| id_bson(&w.id)).collect();
        let cursor = self
            .records
            .find(doc! {"_id": {"$in": ids}, "last_sync_run": run_id})
            .projection(doc! {"_id": 1})
            .await
            .map_err(Error::mongo(CONTEXT))?;
        let mut found = HashSet::new();
        each_doc(cursor, CONTEXT, |d| {
            if let Some(id) = d.get("_id") {
                found.insert(record_id(id));
            }
        })
        .await?;
        Ok(found)
    }
}

/// The statement of an `update` command for one write (`q`, `u`, `hint`).
pub fn statement(w: &Write, ctx: WriteContext<'_>) -> Document {
    let mut update = Update {
        set: doc! {"last_synced_at": to_bson_date(w.at), "last_sync_run": ctx.run_id},
        ..Default::default()
    };
    for change in &w.update {
        update.add(change, w.at, ctx.history_max);
    }
    if !w.events.is_empty() {
        let events: Vec<Bson> = w
            .events
            .iter()
            .map(|e| Bson::Document(event_document(e)))
            .collect();
        update.push.insert("pending_events", doc! {"$each": events});
    }
    // The filter names `_id`; the hint spares the server weighing other
    // indexes (status) that match thousands of records.
    doc! {"q": filter(w), "u": update.into_document(), "multi": false, "upsert": false, "hint": {"_id": 1}}
}

/// Matches the record only as it was read.
fn filter(w: &Write) -> Document {
    let g = &w.guard;
    let mut filter = doc! {
        "_id": id_bson(&w.id),
        "status": g.status.as_str(),
        // As stored: null matches null and absent alike.
        "flink_job_id": match &g.flink_job_id {
            Some(id) => Bson::String(id.to_string()),
            None if g.flink_job_id_empty => Bson::String(String::new()),
            None => Bson::Null,
        },
    };
    match g.revision {
        Some(rev) => filter.insert("revision", rev),
        None => filter.insert("revision", doc! {"$exists": false}),
    };
    filter
}

/// The operators of one record's update.
#[derive(Default)]
struct Update {
    set: Document,
    unset: Document,
    push: Document,
}

impl Update {
    fn add(&mut self, change: &Change, now: DateTime<Utc>, history_max: usize) {
        let set = &mut self.set;
        match change {
            Change::Status { from, to, source } => {
                set.insert("status", to.as_str());
                let entry = doc! {"from": from.as_str(), "to": to.as_str(), "at": to_bson_date(now), "source": source.as_str()};
                self.history("status_history", entry, history_max);
            }
            Change::FlinkJobId { first, all } => {
                set.insert("flink_job_id", first.as_str());
                let all: Vec<Bson> = all.iter().map(|i| Bson::String(i.to_string())).collect();
                set.insert("flink_job_ids", all);
            }
            Change::FlinkState(s) => _ = set.insert("flink_state", s.as_str()),
            Change::FlinkJobsState(states) => {
                let states: Document = states
                    .iter()
                    .map(|(id, state)| (id.clone(), Bson::String(state.clone())))
                    .collect();
                set.insert("flink_jobs_state", states);
            }
            Change::StartTime(t) => _ = set.insert("start_time", to_bson_date(*t)),
            Change::EndTime(t) => _ = set.insert("end_time", to_bson_date(*t)),
            Change::Duration(d) => _ = set.insert("duration", *d),
            Change::StatusReason(r) => _ = set.insert("status_reason", r.as_str()),
            Change::SyncError(Some(e)) => _ = set.insert("sync_error", e.text.as_str()),
            Change::SyncError(None) => _ = self.unset.insert("sync_error", ""),
            Change::MissingCount(0) => _ = self.unset.insert("flink_missing_count", ""),
            Change::MissingCount(n) => _ = set.insert("flink_missing_count", i64::from(*n)),
            Change::HealthCheckedAt(t) => _ = set.insert("health_checked_at", to_bson_date(*t)),
            Change::Health { from, to, reasons } => {
                set.insert("health", to.as_str());
                let reasons: Vec<Bson> = reasons
                    .iter()
                    .map(|r| Bson::Document(doc! {"code": &r.code, "message": &r.message}))
                    .collect();
                set.insert("health_reasons", reasons.clone());
                let entry = doc! {"from": from.map(|h| h.as_str()), "to": to.as_str(),
                "reasons": reasons, "at": to_bson_date(now)};
                self.history("health_history", entry, history_max);
            }
            Change::Checkpoint(Some(c)) => {
                _ = set.insert("checkpoint", checkpoint_document(&c.stored()))
            }
            Change::Checkpoint(None) => _ = self.unset.insert("checkpoint", ""),
            Change::Restarts(n) => _ = set.insert("restarts", count(*n)),
            Change::SubmitterRestarts(n) => _ = set.insert("submitter_restarts", i64::from(*n)),
            Change::RestartSamples(samples) => {
                let samples: Vec<Bson> = samples
                    .iter()
                    .map(|(at, n)| Bson::Array(vec![to_bson_date(*at), count(*n)]))
                    .collect();
                set.insert("restart_samples", samples);
            }
            Change::RestartPoint(point) => self.restart_point(point),
        }
    }

    fn history(&mut self, field: &str, entry: Document, history_max: usize) {
        let keep = -i64::try_from(history_max).unwrap_or(i64::MAX);
        self.push
            .insert(field, doc! {"$each": [entry], "$slice": keep});
    }

    fn restart_point(&mut self, point: &RestartPoint) {
        match point {
            RestartPoint::At(path) => {
                self.set.insert("restart_point", path.as_str());
                self.unset.insert("restart_point_reason", "");
            }
            RestartPoint::None(why) => {
                self.set.insert("restart_point_reason", why.as_str());
                self.unset.insert("restart_point", "");
            }
        }
    }

    fn into_document(self) -> Document {
        let mut update = doc! {"$set": self.set, "$inc": {"revision": 1_i64}};
        if !self.unset.is_empty() {
            update.insert("$unset", self.unset);
        }
        if !self.push.is_empty() {
            update.insert("$push", self.push);
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::rules::health::{Checkpoints, RestartPoint};
    use crate::rules::model::System;
    use crate::rules::model::{Health, HealthReason};
    use crate::rules::plan::{Source, SyncError};

    /// One change of each kind: a new kind of change must be added here
    /// (the match below does not compile without it).
    fn one_of_each() -> Vec<Change> {
        let at = Utc.timestamp_millis_opt(1_000).single().unwrap_or_default();
        let id = FlinkJobId::parse("ef163bff25523543d6699ac3c0e9b72e")
            .unwrap_or_else(|| panic!("an id"));
        let all = vec![
            Change::Status {
                from: Status::Created,
                to: Status::Running,
                source: Source::Flink,
            },
            Change::FlinkJobId {
                first: id.clone(),
                all: vec![id],
            },
            Change::FlinkState("RUNNING".into()),
            Change::FlinkJobsState([("a".to_string(), "RUNNING".to_string())].into()),
            Change::StartTime(at),
            Change::EndTime(at),
            Change::Duration(1.0),
            Change::StatusReason("r".into()),
            Change::SyncError(Some(SyncError::new(System::Flink, "x", 100))),
            Change::SyncError(None),
            Change::MissingCount(0),
            Change::MissingCount(2),
            Change::HealthCheckedAt(at),
            Change::Health {
                from: None,
                to: Health::Degraded,
                reasons: vec![HealthReason {
                    code: "c".into(),
                    message: "m".into(),
                }],
            },
            Change::Checkpoint(Some(Checkpoints::default())),
            Change::Checkpoint(None),
            Change::Restarts(1),
            Change::SubmitterRestarts(1),
            Change::RestartSamples(vec![(at, 1)]),
            Change::RestartPoint(RestartPoint::At("file:/p".into())),
            Change::RestartPoint(RestartPoint::None("why".into())),
        ];
        for c in &all {
            match c {
                Change::Status { .. }
                | Change::FlinkJobId { .. }
                | Change::FlinkState(_)
                | Change::FlinkJobsState(_)
                | Change::StartTime(_)
                | Change::EndTime(_)
                | Change::Duration(_)
                | Change::StatusReason(_)
                | Change::SyncError(_)
                | Change::MissingCount(_)
                | Change::HealthCheckedAt(_)
                | Change::Health { .. }
                | Change::Checkpoint(_)
                | Change::Restarts(_)
                | Change::SubmitterRestarts(_)
                | Change::RestartSamples(_)
                | Change::RestartPoint(_) => {}
            }
        }
        all
    }

    fn written_fields(statement: &Document) -> Vec<String> {
        let update = statement
            .get_document("u")
            .unwrap_or_else(|e| panic!("{e}"));
        update
            .iter()
            .flat_map(|(_, fields)| {
                fields
                    .as_document()
                    .into_iter()
                    .flat_map(|d| d.keys().cloned())
            })
            .collect()
    }

    #[test]
    fn every_kind_of_change_writes_only_fields_sync_owns() {
        let record = Record::new(RecordId::Int32(1), "j", Status::Created);
        let ctx = WriteContext {
            run_id: "r",
            history_max: 5,
        };
        for change in one_of_each() {
            let plan = Plan {
                changes: vec![change.clone()],
                ..Default::default()
            };
            let mut w = Write::new(&record, &plan, Utc::now()).unwrap_or_else(|| panic!("a write"));
            w.events.push(Pending {
                record: Some(RecordId::Int32(1)),
                event_id: "j:1".into(),
                detail: serde_json::json!({}),
                detail_type: "t".into(),
            });
            for field in written_fields(&statement(&w, ctx)) {
                assert!(
                    OWNED_FIELDS.contains(&field.as_str()),
                    "{change:?} writes {field}"
                );
            }
        }
    }

    #[test]
    fn the_readme_lists_exactly_the_fields_sync_owns() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("Fields sync owns:")
            .unwrap_or_else(|| panic!("the README's list"));
        let end = start
            + readme[start..]
                .find("Nothing else is ever written.")
                .unwrap_or_else(|| panic!("its end"));
        let mut listed: Vec<&str> = readme[start..end]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|name| name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .collect();
        listed.sort();
        listed.dedup();
        let mut owned = OWNED_FIELDS.to_vec();
        owned.sort();
        assert_eq!(
            listed, owned,
            "README's \"Fields sync owns\" against writes::OWNED_FIELDS"
        );
    }
}

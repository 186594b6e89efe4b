//! MongoDB adapter: reads the non-final records, applies plans as conditional
//! writes batched into `update` commands (any server version takes many
//! statements in one round trip), and keeps the runs collection.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::error::Error;
use crate::model::{Record, Status, to_bson_date};
use crate::plan::{Change, Plan};

/// Fields sync reads; everything else in a record is neither read nor written.
const PROJECTION: [&str; 15] = [
    "_id",
    "job_id",
    "status",
    "flink_job_id",
    "submitted_at",
    "k8s_job_name",
    "k8s_namespace",
    "flink_state",
    "start_time",
    "end_time",
    "duration",
    "status_reason",
    "sync_error",
    "flink_missing_count",
    "revision",
];

/// Statements per `update` command: far below the 16 MiB message limit.
const BATCH: usize = 500;

pub struct Store {
    db: Database,
    records: Collection<Document>,
    runs: Collection<Document>,
    indexes: OnceCell<()>,
}

/// One conditional write, built from a record and its plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub job_id: String,
    pub oid: Bson,
    pub statement: Document,
}

/// What applying the writes came to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    pub written: Vec<String>,
    /// Records changed meanwhile by someone else: left alone.
    pub conflicts: Vec<String>,
    /// Records whose write the server refused, with why.
    pub failed: Vec<(String, String)>,
}

impl Store {
    pub async fn connect(cfg: &Config) -> Result<Store, Error> {
        let mut options = ClientOptions::parse(cfg.mongodb_uri.expose())
            .await
            .map_err(|e| Error::config("MONGODB_URI", format!("cannot be used: {}", e.kind)))?;
        options
            .app_name
            .get_or_insert_with(|| "flink-job-sync".to_string());
        if let Some(mongodb::options::Tls::Enabled(tls)) = &options.tls
            && tls.allow_invalid_certificates == Some(true)
        {
            tracing::warn!(
                "the MongoDB URI turns TLS certificate verification off (tlsInsecure / tlsAllowInvalidCertificates)"
            );
        }
        options
            .server_selection_timeout
            .get_or_insert(std::time::Duration::from_secs(5));
        options
            .connect_timeout
            .get_or_insert(std::time::Duration::from_secs(5));
        let client = Client::with_options(options).map_err(Error::mongo("creating the client"))?;
        Ok(Store::from_client(&client, cfg))
    }

    /// A store over a client built elsewhere (the benchmark monitors its commands).
    pub fn from_client(client: &Client, cfg: &Config) -> Store {
        let db = client.database(&cfg.database);
        Store {
            records: db.collection(&cfg.collection),
            runs: db.collection(&cfg.runs_collection),
            db,
            indexes: OnceCell::new(),
        }
    }

    pub fn records(&self) -> &Collection<Document> {
        &self.records
    }

    pub fn runs(&self) -> &Collection<Document> {
        &self.runs
    }

    /// Creates the indexes once per process (creation is idempotent on the
    /// server; this keeps it off every invocation's path).
    pub async fn ensure_indexes(&self) -> Result<(), Error> {
        self.indexes
            .get_or_try_init(|| async {
                let idx = |keys: Document, unique: bool| {
                    IndexModel::builder().keys(keys).options(IndexOptions::builder().unique(unique).build()).build()
                };
                self.records
                    .create_indexes([
                        idx(doc! {"status": 1}, false),
                        idx(doc! {"submitted_at": -1}, false),
                        idx(doc! {"pending_events.event_id": 1}, false),
                    ])
                    .await
                    .map_err(Error::mongo("creating indexes"))?;
                // Existing duplicates must not stop sync: the unique index is
                // wanted, not required.
                if let Err(e) = self.records.create_index(idx(doc! {"job_id": 1}, true)).await {
                    tracing::warn!(error = %e.kind, "unique index on job_id could not be created (duplicate job_ids?)");
                }
                self.runs
                    .create_index(idx(doc! {"started_at": -1}, false))
                    .await
                    .map_err(Error::mongo("creating the runs index"))?;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// The non-final records (all, or those named), in `_id` order, parsed
    /// as they stream in (each document is dropped once parsed, so a run
    /// never holds two copies of the fleet), and the ones that could not be
    /// parsed.
    pub async fn non_final_records(
        &self,
        job_ids: Option<&[String]>,
    ) -> Result<(Vec<Record>, Vec<crate::model::MalformedRecord>), Error> {
        let mut records = Vec::new();
        let mut malformed = Vec::new();
        let statuses: Vec<&str> = Status::NON_FINAL.iter().map(|s| s.as_str()).collect();
        let mut filter = doc! {"status": {"$in": statuses}};
        if let Some(ids) = job_ids {
            filter.insert("job_id", doc! {"$in": ids});
        }
        let projection: Document = PROJECTION
            .iter()
            .map(|f| (f.to_string(), Bson::Int32(1)))
            .collect();
        let cursor = self
            .records
            .find(filter)
            .projection(projection)
            .batch_size(1000)
            .await
            .map_err(Error::mongo("reading non-final records"))?;
        each_doc(
            cursor,
            "reading non-final records",
            |d| match Record::from_document(&d) {
                Ok(r) => records.push(r),
                Err(e) => malformed.push(e),
            },
        )
        .await?;
        // Sorted here rather than by the server: the order only has to be
        // stable for resuming, and a server-side sort costs the store a
        // blocking sort of the whole result.
        records.sort_by_cached_key(|r| r.oid.sort_key());
        Ok((records, malformed))
    }

    /// Of these job_ids, the ones whose record has a final status (one
    /// query on the unique `job_id` index; a manual run's answer says which
    /// requested records it left alone for being final).
    pub async fn final_job_ids(&self, job_ids: &[String]) -> Result<Vec<String>, Error> {
        let statuses: Vec<&str> = Status::ALL
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str())
            .collect();
        let filter = doc! {"job_id": {"$in": job_ids}, "status": {"$in": statuses}};
        let cursor = self
            .records
            .find(filter)
            .projection(doc! {"_id": 0, "job_id": 1})
            .await
            .map_err(Error::mongo("reading final records among the requested"))?;
        let mut out = Vec::new();
        each_doc(cursor, "reading final records among the requested", |d| {
            if let Ok(id) = d.get_str("job_id") {
                out.push(id.to_string());
            }
        })
        .await?;
        Ok(out)
    }

    /// Applies the writes in batches; a write that no longer matches (another
    /// writer changed the record) is a conflict, never an overwrite.
    /// Takes the writes by value: each batch's statements are moved into its
    /// command, so no second copy of them is ever held.
    pub async fn apply(&self, writes: Vec<Write>, run_id: &str) -> Result<Applied, Error> {
        let mut applied = Applied::default();
        let mut rest = writes;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(BATCH));
            let (chunk, statements): (Vec<(String, Bson)>, Vec<Document>) =
                std::mem::replace(&mut rest, tail)
                    .into_iter()
                    .map(|w| ((w.job_id, w.oid), w.statement))
                    .unzip();
            let reply = self
                .db
                .run_command(
                    doc! {"update": self.records.name(), "updates": statements, "ordered": false},
                )
                .await
                .map_err(Error::mongo("writing records"))?;
            let mut refused = std::collections::HashMap::new();
            if let Ok(errors) = reply.get_array("writeErrors") {
                for e in errors.iter().filter_map(Bson::as_document) {
                    let index = e
                        .get_i32("index")
                        .ok()
                        .and_then(|i| usize::try_from(i).ok());
                    if let Some((job_id, _)) = index.and_then(|i| chunk.get(i)) {
                        refused.insert(
                            job_id.clone(),
                            e.get_str("errmsg").unwrap_or("write error").to_string(),
                        );
                    }
                }
            }
            let matched = reply
                .get_i32("n")
                .map(i64::from)
                .or_else(|_| reply.get_i64("n"))
                .unwrap_or(0);
            let expected = (chunk.len() - refused.len()) as i64;
            let ours: std::collections::HashSet<String> = if matched >= expected {
                chunk
                    .iter()
                    .map(|(job_id, _)| job_id.clone())
                    .filter(|j| !refused.contains_key(j))
                    .collect()
            } else {
                // Which statements matched is not in the reply: the records
                // written by this run carry its id.
                let ids: Vec<Bson> = chunk.iter().map(|(_, oid)| oid.clone()).collect();
                let cursor = self
                    .records
                    .find(doc! {"_id": {"$in": ids}, "last_sync_run": run_id})
                    .projection(doc! {"job_id": 1})
                    .await
                    .map_err(Error::mongo("checking conflicting writes"))?;
                let mut found = std::collections::HashSet::new();
                each_doc(cursor, "checking conflicting writes", |d| {
                    if let Ok(j) = d.get_str("job_id") {
                        found.insert(j.to_string());
                    }
                })
                .await?;
                found
            };
            for (job_id, _) in chunk {
                if let Some(e) = refused.remove(&job_id) {
                    applied.failed.push((job_id, e));
                } else if ours.contains(&job_id) {
                    applied.written.push(job_id);
                } else {
                    applied.conflicts.push(job_id);
                }
            }
        }
        Ok(applied)
    }

    /// Events left pending in any record (final ones included).
    pub async fn pending_events(&self) -> Result<Vec<crate::events::Pending>, Error> {
        let cursor = self
            .records
            .find(doc! {"pending_events.event_id": {"$exists": true}})
            .projection(doc! {"pending_events": 1})
            .await
            .map_err(Error::mongo("reading pending events"))?;
        let mut out = Vec::new();
        each_doc(cursor, "reading pending events", |d| {
            let oid = d.get("_id").cloned().unwrap_or(Bson::Null);
            let events = d
                .get_array("pending_events")
                .into_iter()
                .flatten()
                .filter_map(Bson::as_document);
            for e in events {
                if let (Ok(event_id), Ok(detail)) =
                    (e.get_str("event_id"), e.get_document("detail"))
                {
                    out.push(crate::events::Pending {
                        oid: oid.clone(),
                        event_id: event_id.to_string(),
                        detail: crate::events::detail_json(detail),
                    });
                }
            }
        })
        .await?;
        Ok(out)
    }

    /// Removes the events EventBridge accepted from their records.
    pub async fn ack_events(
        &self,
        events: &[crate::events::Pending],
        accepted: &[String],
    ) -> Result<(), Error> {
        let accepted: std::collections::HashSet<&str> =
            accepted.iter().map(String::as_str).collect();
        let mut by_record: Vec<(Bson, Vec<String>)> = Vec::new();
        for e in events
            .iter()
            .filter(|e| accepted.contains(e.event_id.as_str()))
        {
            match by_record.iter_mut().find(|(oid, _)| *oid == e.oid) {
                Some((_, ids)) => ids.push(e.event_id.clone()),
                None => by_record.push((e.oid.clone(), vec![e.event_id.clone()])),
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

    /// Where to resume: the `_id` the latest full run stopped after, when that
    /// run was cut short.
    pub async fn resume_point(&self) -> Result<Option<Bson>, Error> {
        let latest = self
            .runs
            .find_one(doc! {"scope": "all", "finished_at": {"$exists": true}})
            .sort(doc! {"started_at": -1})
            .await
            .map_err(Error::mongo("reading the runs"))?;
        Ok(latest
            .filter(|d| d.get_str("state") == Ok("partial"))
            .and_then(|d| d.get("resume_after").cloned()))
    }

    /// When the latest complete run over every non-final record started.
    pub async fn last_full_run(&self) -> Result<Option<DateTime<Utc>>, Error> {
        let found = self
            .runs
            .find_one(doc! {"state": "complete", "scope": "all"})
            .sort(doc! {"started_at": -1})
            .await
            .map_err(Error::mongo("reading the runs"))?;
        Ok(found.and_then(|d| d.get("started_at").and_then(crate::model::parse_date)))
    }

    pub async fn start_run(
        &self,
        run_id: &str,
        started: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<(), Error> {
        self.runs
            .insert_one(doc! {"_id": run_id, "started_at": to_bson_date(started), "state": "running", "dry_run": dry_run})
            .await
            .map_err(Error::mongo("recording the run"))?;
        Ok(())
    }

    pub async fn finish_run(&self, run_id: &str, summary: Document) -> Result<(), Error> {
        self.runs
            .update_one(doc! {"_id": run_id}, doc! {"$set": summary})
            .await
            .map_err(Error::mongo("recording the run's end"))?;
        Ok(())
    }
}

/// Stores `event` in the record by the same write (see [`crate::events`]).
pub fn add_pending_event(write: &mut Write, event: Document) {
    if let Ok(update) = write.statement.get_document_mut("u") {
        if !update.contains_key("$push") {
            update.insert("$push", Document::new());
        }
        if let Ok(push) = update.get_document_mut("$push") {
            push.insert("pending_events", event);
        }
    }
}

/// Feeds every document of `cursor` to `each`; a document that cannot be
/// decoded is logged and skipped, a lost server is an error named by `context`.
pub(crate) async fn each_doc(
    mut cursor: mongodb::Cursor<Document>,
    context: &str,
    mut each: impl FnMut(Document),
) -> Result<(), Error> {
    while cursor.advance().await.map_err(Error::mongo(context))? {
        match cursor.deserialize_current() {
            Ok(d) => each(d),
            Err(e) => {
                tracing::warn!(error = %e, context, "a document could not be decoded and is skipped")
            }
        }
    }
    Ok(())
}

pub fn new_run_id() -> String {
    ObjectId::new().to_hex()
}

/// The conditional write for a plan, or `None` when the plan changes nothing.
/// The filter pins what the plan was decided on: the record's status, JobID
/// and revision (absent for a record sync never wrote).
pub fn write_for(
    record: &Record,
    plan: &Plan,
    now: DateTime<Utc>,
    run_id: &str,
    history_max: usize,
) -> Option<Write> {
    if plan.changes.is_empty() {
        return None;
    }
    let mut filter = doc! {
        "_id": record.oid.to_bson(),
        "status": record.status.as_str(),
        // As stored: null matches null and absent alike.
        "flink_job_id": match &record.flink_job_id {
            Some(id) => Bson::String(id.to_string()),
            None if record.flink_job_id_empty => Bson::String(String::new()),
            None => Bson::Null,
        },
    };
    match record.revision {
        Some(rev) => filter.insert("revision", rev),
        None => filter.insert("revision", doc! {"$exists": false}),
    };
    let mut set = doc! {"last_synced_at": to_bson_date(now), "last_sync_run": run_id};
    let mut unset = Document::new();
    let mut push = None;
    for change in &plan.changes {
        match change {
            Change::Status { from, to, source } => {
                set.insert("status", to.as_str());
                let entry = doc! {"from": from.as_str(), "to": to.as_str(), "at": to_bson_date(now), "source": source.as_str()};
                push = Some(
                    doc! {"status_history": {"$each": [entry], "$slice": -(history_max as i64)}},
                );
            }
            Change::FlinkJobId { first, all } => {
                set.insert("flink_job_id", first.as_str());
                set.insert(
                    "flink_job_ids",
                    all.iter()
                        .map(|i| Bson::String(i.to_string()))
                        .collect::<Vec<_>>(),
                );
            }
            Change::FlinkState(s) => {
                set.insert("flink_state", s.as_str());
            }
            Change::StartTime(t) => {
                set.insert("start_time", to_bson_date(*t));
            }
            Change::EndTime(t) => {
                set.insert("end_time", to_bson_date(*t));
            }
            Change::Duration(d) => {
                set.insert("duration", *d);
            }
            Change::StatusReason(r) => {
                set.insert("status_reason", r.as_str());
            }
            Change::SyncError(Some(e)) => {
                set.insert("sync_error", e.text.as_str());
            }
            Change::SyncError(None) => {
                unset.insert("sync_error", "");
            }
            Change::MissingCount(0) => {
                unset.insert("flink_missing_count", "");
            }
            Change::MissingCount(n) => {
                set.insert("flink_missing_count", i64::from(*n));
            }
        }
    }
    let mut update = doc! {"$set": set, "$inc": {"revision": 1_i64}};
    if !unset.is_empty() {
        update.insert("$unset", unset);
    }
    if let Some(push) = push {
        update.insert("$push", push);
    }
    Some(Write {
        job_id: record.job_id.clone(),
        oid: record.oid.to_bson(),
        // The filter names `_id`; the hint spares the server weighing other
        // indexes (status) that match thousands of records.
        statement: doc! {"q": filter, "u": update, "multi": false, "upsert": false, "hint": {"_id": 1}},
    })
}

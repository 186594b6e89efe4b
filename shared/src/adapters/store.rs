//! MongoDB adapter: reads the non-final records, applies plans as conditional
//! writes batched into `update` commands (any server version takes many
//! statements in one round trip), keeps the runs collection, and answers
//! cleanup's and the monitoring's questions about the records.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc, oid::ObjectId};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};
use tokio::sync::OnceCell;

use crate::config::{DEFAULT_CLUSTER, MongoSettings};
use crate::error::Error;
use crate::rules::cleanup::RecordFacts;
use crate::rules::health::RestartPoint;
use crate::rules::model::{Record, Status, is_dns_subdomain, to_bson_date};
use crate::rules::plan::{Change, Plan};

/// Fields sync reads; everything else in a record is neither read nor written.
const PROJECTION: [&str; 27] = [
    "_id",
    "job_id",
    "status",
    "flink_job_id",
    "submitted_at",
    "k8s_job_name",
    "k8s_namespace",
    "flink_state",
    "flink_cluster",
    "flink_job_ids",
    "flink_jobs_state",
    "start_time",
    "end_time",
    "duration",
    "status_reason",
    "sync_error",
    "flink_missing_count",
    "revision",
    "health",
    "health_reasons",
    "health_checked_at",
    "restarts",
    "restart_samples",
    "submitter_restarts",
    "checkpoint",
    "restart_point",
    "restart_point_reason",
];

/// Statements per `update` command: far below the 16 MiB message limit.
const BATCH: usize = 500;

/// The records collection and the runs collection of one database.
pub struct Store {
    db: Database,
    records: Collection<Document>,
    runs: Collection<Document>,
    /// `<collection>_untracked`: the untracked jobs seen, each announced once.
    untracked: Collection<Document>,
    indexes: OnceCell<()>,
}

/// One conditional write, built from a record and its plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The record written.
    pub job_id: String,
    /// Its `_id`.
    pub oid: Bson,
    /// The statement of an `update` command (`q`, `u`, `hint`).
    pub statement: Document,
}

/// What applying the writes came to.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// Records written as planned.
    pub written: Vec<String>,
    /// Records changed meanwhile by someone else: left alone.
    pub conflicts: Vec<String>,
    /// Records whose write the server refused, with why.
    pub failed: Vec<(String, String)>,
}

impl Store {
    /// Connects with the settings' URI (an app name and 5 s timeouts unless it sets them).
    pub async fn connect(settings: &MongoSettings) -> Result<Store, Error> {
        let mut options = ClientOptions::parse(settings.uri.expose())
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
        Ok(Store::from_client(&client, settings))
    }

    /// A store over a client built elsewhere (the benchmark monitors its commands).
    pub fn from_client(client: &Client, settings: &MongoSettings) -> Store {
        let db = client.database(&settings.database);
        Store {
            records: db.collection(&settings.collection),
            runs: db.collection(&settings.runs_collection),
            untracked: db.collection(&format!("{}_untracked", settings.collection)),
            db,
            indexes: OnceCell::new(),
        }
    }

    /// Runs an aggregation over the records (the monitoring's pipelines).
    pub async fn aggregate(
        &self,
        pipeline: Vec<Document>,
        context: &str,
    ) -> Result<Vec<Document>, Error> {
        let cursor = self
            .records
            .aggregate(pipeline)
            .await
            .map_err(Error::mongo(context))?;
        let mut out = Vec::new();
        each_doc(cursor, context, |d| out.push(d)).await?;
        Ok(out)
    }

    /// What cleanup needs of the records submitted as these Jobs of
    /// namespace `ns`, by Job name. A record names its Job by
    /// `k8s_job_name`, else by its `job_id`.
    pub async fn records_of_jobs(
        &self,
        names: &[&str],
        ns: &str,
    ) -> Result<HashMap<String, RecordFacts>, Error> {
        const CONTEXT: &str = "reading records of finished Jobs";
        let mut out = HashMap::new();
        for chunk in names.chunks(1000) {
            let filter =
                doc! {"$or": [{"k8s_job_name": {"$in": chunk}}, {"job_id": {"$in": chunk}}]};
            let cursor = self
                .records
                .find(filter)
                .projection(doc! {"job_id": 1, "k8s_job_name": 1, "k8s_namespace": 1, "status": 1, "flink_job_id": 1})
                .await
                .map_err(Error::mongo(CONTEXT))?;
            each_doc(cursor, CONTEXT, |d| {
                if let Some((name, facts)) = job_record(&d, ns) {
                    out.insert(name, facts);
                }
            })
            .await?;
        }
        Ok(out)
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
                        // Which record claims a running job: one query per field.
                        idx(doc! {"flink_job_id": 1}, false),
                        idx(doc! {"flink_job_ids": 1}, false),
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
        clusters: Option<&[String]>,
    ) -> Result<(Vec<Record>, Vec<crate::rules::model::MalformedRecord>), Error> {
        let mut records = Vec::new();
        let mut malformed = Vec::new();
        let statuses: Vec<&str> = Status::NON_FINAL.iter().map(|s| s.as_str()).collect();
        let mut filter = doc! {"status": {"$in": statuses}};
        if let Some(ids) = job_ids {
            filter.insert("job_id", doc! {"$in": ids});
        }
        if let Some(clusters) = clusters {
            filter.insert("$or", cluster_scope(clusters));
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
            let batch = std::mem::replace(&mut rest, tail);
            self.apply_batch(batch, run_id, &mut applied).await?;
        }
        Ok(applied)
    }

    /// One `update` command, and which of its statements were ours.
    async fn apply_batch(
        &self,
        batch: Vec<Write>,
        run_id: &str,
        applied: &mut Applied,
    ) -> Result<(), Error> {
        let (chunk, statements): (Vec<(String, Bson)>, Vec<Document>) = batch
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
        let mut refused = refused_writes(&reply, &chunk);
        let matched = reply
            .get_i32("n")
            .map(i64::from)
            .or_else(|_| reply.get_i64("n"))
            .unwrap_or(0);
        let ours: HashSet<String> = if matched >= (chunk.len() - refused.len()) as i64 {
            chunk
                .iter()
                .map(|(job_id, _)| job_id.clone())
                .filter(|j| !refused.contains_key(j))
                .collect()
        } else {
            self.written_by(run_id, &chunk).await?
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
        Ok(())
    }

    /// Which of these records carry this run's id: which statements
    /// matched is not in an `update` reply.
    async fn written_by(
        &self,
        run_id: &str,
        chunk: &[(String, Bson)],
    ) -> Result<HashSet<String>, Error> {
        let ids: Vec<Bson> = chunk.iter().map(|(_, oid)| oid.clone()).collect();
        let cursor = self
            .records
            .find(doc! {"_id": {"$in": ids}, "last_sync_run": run_id})
            .projection(doc! {"job_id": 1})
            .await
            .map_err(Error::mongo("checking conflicting writes"))?;
        let mut found = HashSet::new();
        each_doc(cursor, "checking conflicting writes", |d| {
            if let Ok(j) = d.get_str("job_id") {
                found.insert(j.to_string());
            }
        })
        .await?;
        Ok(found)
    }

    /// Of these JobIDs, the ones some record claims (as `flink_job_id` or
    /// among `flink_job_ids`), final records included: one query per field,
    /// each on its index. (An `$or` of the two would be one query, but not
    /// every server unions indexes for it: SecantusDB scans the collection,
    /// 21 s at 10,000 records and 500 JobIDs against 0.67 s for the two.)
    pub async fn claimed_job_ids(&self, ids: &[String]) -> Result<HashSet<String>, Error> {
        const CONTEXT: &str = "reading which records claim the running jobs";
        let mut claimed = HashSet::new();
        for chunk in ids.chunks(10_000) {
            for field in ["flink_job_id", "flink_job_ids"] {
                let cursor = self
                    .records
                    .find(doc! {field: {"$in": chunk}})
                    .projection(doc! {"_id": 0, field: 1})
                    .await
                    .map_err(Error::mongo(CONTEXT))?;
                each_doc(cursor, CONTEXT, |d| {
                    let all = d.get_array("flink_job_ids").into_iter().flatten();
                    let ids = d.get("flink_job_id").into_iter().chain(all);
                    claimed.extend(ids.filter_map(Bson::as_str).map(str::to_string));
                })
                .await?;
            }
        }
        Ok(claimed)
    }

    /// Notes these untracked jobs (once each, in the untracked collection)
    /// and returns those not yet announced.
    pub async fn untracked_to_announce(
        &self,
        jobs: &[crate::rules::model::Untracked],
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::rules::model::Untracked>, Error> {
        const CONTEXT: &str = "noting untracked jobs";
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let statements: Vec<Document> = jobs
            .iter()
            .map(|j| {
                doc! {"q": {"_id": j.key()}, "u": {"$setOnInsert": {"cluster": &j.cluster,
                "flink_job_id": &j.flink_job_id, "name": &j.name, "first_seen": to_bson_date(now),
                "announced": false}}, "upsert": true}
            })
            .collect();
        for chunk in statements.chunks(BATCH) {
            self.db
                .run_command(doc! {"update": self.untracked.name(), "updates": chunk.to_vec(), "ordered": false})
                .await
                .map_err(Error::mongo(CONTEXT))?;
        }
        let keys: Vec<String> = jobs.iter().map(|j| j.key()).collect();
        let cursor = self
            .untracked
            .find(doc! {"_id": {"$in": &keys}, "announced": false})
            .projection(doc! {"_id": 1})
            .await
            .map_err(Error::mongo(CONTEXT))?;
        let mut due = HashSet::new();
        each_doc(cursor, CONTEXT, |d| {
            if let Ok(k) = d.get_str("_id") {
                due.insert(k.to_string());
            }
        })
        .await?;
        Ok(jobs
            .iter()
            .filter(|j| due.contains(&j.key()))
            .cloned()
            .collect())
    }

    /// Marks untracked jobs as announced (EventBridge accepted their event).
    pub async fn untracked_announced(&self, keys: &[String]) -> Result<(), Error> {
        if keys.is_empty() {
            return Ok(());
        }
        self.untracked
            .update_many(
                doc! {"_id": {"$in": keys}},
                doc! {"$set": {"announced": true}},
            )
            .await
            .map_err(Error::mongo("noting announced untracked jobs"))?;
        Ok(())
    }

    /// Events left pending in any record (final ones included).
    pub async fn pending_events(&self) -> Result<Vec<crate::adapters::events::Pending>, Error> {
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
                    let detail_type = e
                        .get_str("detail_type")
                        .unwrap_or(crate::adapters::events::DETAIL_TYPE);
                    out.push(crate::adapters::events::Pending {
                        oid: oid.clone(),
                        event_id: event_id.to_string(),
                        detail: crate::adapters::events::detail_json(detail),
                        detail_type: detail_type.to_string(),
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
        events: &[crate::adapters::events::Pending],
        accepted: &[String],
    ) -> Result<(), Error> {
        let accepted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
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

    /// Where to resume: the `_id` the latest run over `scope` (every record,
    /// or some clusters' records) stopped after, when that run was cut short.
    pub async fn resume_point(&self, scope: &str) -> Result<Option<Bson>, Error> {
        let latest = self
            .runs
            .find_one(doc! {"scope": scope, "finished_at": {"$exists": true}})
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
        Ok(found.and_then(|d| {
            d.get("started_at")
                .and_then(crate::rules::model::parse_date)
        }))
    }

    /// Records a run's start (a real run only).
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

    /// Records a run's end and figures.
    pub async fn finish_run(&self, run_id: &str, summary: Document) -> Result<(), Error> {
        self.runs
            .update_one(doc! {"_id": run_id}, doc! {"$set": summary})
            .await
            .map_err(Error::mongo("recording the run's end"))?;
        Ok(())
    }
}

/// Stores `event` in the record by the same write (see [`crate::adapters::events`]).
pub fn add_pending_event(write: &mut Write, event: Document) {
    if let Ok(update) = write.statement.get_document_mut("u") {
        if !update.contains_key("$push") {
            update.insert("$push", Document::new());
        }
        if let Ok(push) = update.get_document_mut("$push") {
            // A second event in the same write joins the first.
            match push.get_document_mut("pending_events") {
                Ok(each) => {
                    if let Ok(list) = each.get_array_mut("$each") {
                        list.push(Bson::Document(event));
                    }
                }
                Err(_) => {
                    push.insert("pending_events", doc! {"$each": [event]});
                }
            }
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

/// A fresh run id (an ObjectId's hex).
pub fn new_run_id() -> String {
    ObjectId::new().to_hex()
}

/// The records of these clusters: by `flink_cluster`, and, for
/// [`DEFAULT_CLUSTER`], the records that name none.
fn cluster_scope(clusters: &[String]) -> Vec<Document> {
    let named: Vec<&str> = clusters
        .iter()
        .map(String::as_str)
        .filter(|c| *c != DEFAULT_CLUSTER)
        .collect();
    let mut any = vec![doc! {"flink_cluster": {"$in": named}}];
    if clusters.iter().any(|c| c == DEFAULT_CLUSTER) {
        // Null matches a missing field too.
        any.push(doc! {"flink_cluster": null});
    }
    any
}

/// The statements of an `update` reply the server refused, by job_id, with why.
fn refused_writes(reply: &Document, chunk: &[(String, Bson)]) -> HashMap<String, String> {
    let mut refused = HashMap::new();
    let errors = reply.get_array("writeErrors").into_iter().flatten();
    for e in errors.filter_map(Bson::as_document) {
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
    refused
}

/// A record as cleanup reads it, keyed by its Job's name; `None` for a
/// record of another namespace or one whose Job name cannot be a name.
fn job_record(d: &Document, ns: &str) -> Option<(String, RecordFacts)> {
    let job_id = d.get_str("job_id").ok()?;
    let name = d.get_str("k8s_job_name").unwrap_or(job_id);
    let record_ns = d.get_str("k8s_namespace").unwrap_or(ns);
    if record_ns != ns || !is_dns_subdomain(name) {
        return None;
    }
    let facts = RecordFacts {
        job_id: job_id.to_string(),
        status: d.get_str("status").ok().and_then(Status::parse),
        has_flink_job_id: matches!(d.get("flink_job_id"), Some(Bson::String(s)) if !s.is_empty()),
    };
    Some((name.to_string(), facts))
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
    let mut update = Update {
        set: doc! {"last_synced_at": to_bson_date(now), "last_sync_run": run_id},
        ..Default::default()
    };
    for change in &plan.changes {
        update.add(change, now, history_max);
    }
    Some(Write {
        job_id: record.job_id.clone(),
        oid: record.oid.to_bson(),
        // The filter names `_id`; the hint spares the server weighing other
        // indexes (status) that match thousands of records.
        statement: doc! {"q": write_filter(record), "u": update.into_document(), "multi": false, "upsert": false, "hint": {"_id": 1}},
    })
}

/// A count as MongoDB stores it (Int64; saturated, never wrapped).
fn count(n: u64) -> Bson {
    Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Matches the record only as it was read.
fn write_filter(record: &Record) -> Document {
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
                self.push.insert(
                    "status_history",
                    doc! {"$each": [entry], "$slice": -(history_max as i64)},
                );
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
                self.push.insert(
                    "health_history",
                    doc! {"$each": [entry], "$slice": -(history_max as i64)},
                );
            }
            Change::Checkpoint(Some(c)) => _ = set.insert("checkpoint", c.to_document()),
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
            Change::RestartPoint(RestartPoint::At(path)) => {
                set.insert("restart_point", path.as_str());
                self.unset.insert("restart_point_reason", "");
            }
            Change::RestartPoint(RestartPoint::None(why)) => {
                set.insert("restart_point_reason", why.as_str());
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

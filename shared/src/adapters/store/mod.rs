//! MongoDB adapter: the one place that knows how records, events, untracked
//! jobs and runs are stored. [`Store`] connects once and hands out a store
//! per collection job, each in its own module:
//!
//! - [`cursor`]: reading a cursor through, and the size of a batch;
//! - [`record`]: a `flink_jobs` document read into the rules' record, and
//!   the BSON forms of the rules' values;
//! - [`records`]: the reads of records (sync's, cleanup's, the monitoring's);
//! - [`writes`]: plans applied as conditional writes, batched into `update`
//!   commands (any server version takes many statements in one round trip);
//! - [`outbox`]: events stored with their write, published, then pulled;
//! - [`untracked`]: the jobs no record claims, each announced once;
//! - [`runs`]: one document per sync run;
//! - [`stats`]: the monitoring's aggregations.

pub mod cursor;
pub mod outbox;
pub mod record;
pub mod records;
pub mod runs;
pub mod stats;
pub mod untracked;
pub mod writes;

use mongodb::bson::{Document, doc, oid::ObjectId};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, IndexModel};
use tokio::sync::OnceCell;

use crate::adapters::store::outbox::Outbox;
use crate::adapters::store::records::Records;
use crate::adapters::store::runs::Runs;
use crate::adapters::store::untracked::UntrackedJobs;
use crate::adapters::store::writes::Writer;
use crate::config::MongoSettings;
use crate::error::Error;

/// The records collection, the runs collection and the untracked jobs of
/// one database, each behind the store of its own job.
pub struct Store {
    records: Records,
    writer: Writer,
    outbox: Outbox,
    untracked: UntrackedJobs,
    runs: Runs,
    indexes: OnceCell<()>,
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
        let records = db.collection::<Document>(&settings.collection);
        Store {
            records: Records::new(records.clone()),
            writer: Writer::new(db.clone(), records.clone()),
            outbox: Outbox::new(db.clone(), records),
            untracked: UntrackedJobs::new(
                db.clone(),
                db.collection(&format!("{}_untracked", settings.collection)),
            ),
            runs: Runs::new(db.collection(&settings.runs_collection)),
            indexes: OnceCell::new(),
        }
    }

    /// The reads of records.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The conditional writes of plans.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The events waiting in records for EventBridge.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The jobs no record claims.
    pub fn untracked(&self) -> &UntrackedJobs {
        &self.untracked
    }

    /// The runs collection.
    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Creates the indexes once per process (creation is idempotent on the
    /// server; this keeps it off every invocation's path).
    pub async fn ensure_indexes(&self) -> Result<(), Error> {
        self.indexes
            .get_or_try_init(|| async {
                let records = self.records.collection();
                records
                    .create_indexes(indexes().map(|(keys, _)| index(keys, false)))
                    .await
                    .map_err(Error::mongo("creating indexes"))?;
                // Existing duplicates must not stop sync: the unique index is
                // wanted, not required.
                if let Err(e) = records.create_index(index(doc! {"job_id": 1}, true)).await {
                    tracing::warn!(error = %e.kind, "unique index on job_id could not be created (duplicate job_ids?)");
                }
                self.runs.create_index().await
            })
            .await
            .map(|_| ())
    }
}

/// The records' indexes besides the unique one on `job_id`, with what each serves.
pub fn indexes() -> [(Document, &'static str); 5] {
    [
        (doc! {"status": 1}, "the non-final records a run reads"),
        (doc! {"submitted_at": -1}, "the monitoring's time windows"),
        (
            doc! {"pending_events.event_id": 1},
            "the events left pending",
        ),
        // One query per field: not every server unions indexes for an $or.
        (
            doc! {"flink_job_id": 1},
            "which record claims a running job",
        ),
        (
            doc! {"flink_job_ids": 1},
            "which record claims a running job",
        ),
    ]
}

fn index(keys: Document, unique: bool) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().unique(unique).build())
        .build()
}

/// A fresh run id (an ObjectId's hex).
pub fn new_run_id() -> String {
    ObjectId::new().to_hex()
}

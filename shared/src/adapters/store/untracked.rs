//! The untracked jobs (`<collection>_untracked`): every running job a
//! cluster runs that no record claims, noted once, announced once.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};
use mongodb::{Collection, Database};

use crate::adapters::store::cursor::{BATCH, each_doc};
use crate::adapters::store::record::to_bson_date;
use crate::error::Error;
use crate::rules::model::Untracked;

/// The untracked jobs collection.
pub struct UntrackedJobs {
    db: Database,
    untracked: Collection<Document>,
}

impl UntrackedJobs {
    pub(crate) fn new(db: Database, untracked: Collection<Document>) -> UntrackedJobs {
        UntrackedJobs { db, untracked }
    }

    /// Notes these untracked jobs (once each) and returns those not yet announced.
    pub async fn to_announce(
        &self,
        jobs: &[Untracked],
        now: DateTime<Utc>,
    ) -> Result<Vec<Untracked>, Error> {
        const CONTEXT: &str = "noting untracked jobs";
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let statements: Vec<Document> = jobs
            .iter()
            .map(|j| {
                doc! {"q": {"_id": j.key()}, "u": {"$setOnInsert": {"cluster": j.cluster.name(),
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
        let keys: Vec<String> = jobs.iter().map(Untracked::key).collect();
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
    pub async fn announced(&self, keys: &[String]) -> Result<(), Error> {
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
}
